"""Wait, within a bound, for the metadata database to accept this role's connection.

A database that is not up yet (refused, unresolvable, starting up) is retried until
AIRFLOW_DB_WAIT_TIMEOUT; one that answers and says no (bad password, no such database
or role, TLS required) is reported at once: waiting would not change its mind.
"""

import time
from urllib.parse import parse_qsl, unquote, urlsplit

from entrypoint import StartupError

TRANSIENT = (
    "connection refused",
    "could not translate host name",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "the database system is starting up",
    "the database system is shutting down",
    "server closed the connection unexpectedly",
)


def connect_kwargs(url: str) -> dict[str, object] | None:
    """psycopg2.connect() arguments for a PostgreSQL SQLAlchemy URL; None for other databases."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return None
    kwargs: dict[str, object] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
    }
    if parts.username:
        kwargs["user"] = unquote(parts.username)
    if parts.password:
        kwargs["password"] = unquote(parts.password)
    kwargs.update(parse_qsl(parts.query))
    return kwargs


def wait_for_database(url: str, timeout: float, say=print) -> None:
    kwargs = connect_kwargs(url)
    if kwargs is None:
        return
    import psycopg2

    where = f"{kwargs['host']}:{kwargs['port']}/{kwargs['dbname']}"
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            psycopg2.connect(connect_timeout=max(1, min(5, int(timeout))), **kwargs).close()
            return
        except psycopg2.OperationalError as exc:
            reason = first_line(exc)
            if not any(marker in reason.lower() for marker in TRANSIENT):
                user = kwargs.get("user", "")
                raise StartupError(f"database {where} refused user {user!r}: {reason}") from None
            if time.monotonic() >= deadline:
                raise StartupError(
                    f"database {where} unreachable for {timeout:g}s (AIRFLOW_DB_WAIT_TIMEOUT): {reason}"
                ) from None
            if not announced:
                say(f"waiting up to {timeout:g}s for database {where}: {reason}")
                announced = True
            time.sleep(1)


def first_line(exc: Exception) -> str:
    """libpq's message without its `connection to server at ... failed:` preamble."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if text.startswith("connection to server") and "failed:" in text:
        text = text.split("failed:", 1)[1].strip()
    return text
