"""dag-processor and triggerer: this host's own heartbeat row in the metadata DB `job` table."""

import math
import socket
from urllib.parse import parse_qsl, unquote, urlsplit

from healthchecks import HEALTHY, UNHEALTHY, Misconfigured, Verdict
from healthchecks.airflow_config import number, required

# role -> (Airflow job_type, the setting that paces its heartbeat)
JOBS = {
    "dag-processor": ("DagProcessorJob", ("scheduler", "job_heartbeat_sec")),
    "triggerer": ("TriggererJob", ("triggerer", "job_heartbeat_sec")),
}
QUERY = """
    SELECT EXTRACT(EPOCH FROM (now() - latest_heartbeat))
    FROM job WHERE job_type = %s AND hostname = %s AND state = 'running'
    ORDER BY latest_heartbeat DESC LIMIT 1
"""


def threshold(heartbeat_sec: float) -> float:
    """Airflow allows 2.1 heartbeats, which a busy component overshoots (10.14 s seen against
    10.5 s). Four heartbeats, never under 30 s: a stopped component still fails within 30 s
    at the default 5 s pace."""
    return max(4 * heartbeat_sec, 30.0)


def airflow_hostname() -> str:
    """What Airflow's default hostname_callable (airflow.utils.net.getfqdn) returns."""
    name = socket.gethostname()
    try:
        for *_, canonical, _addr in socket.getaddrinfo(
            name, None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME
        ):
            if canonical:
                return canonical
    except OSError:
        pass
    return name


def connect_args(url: str, timeout: float) -> dict:
    """psycopg2 keyword arguments from a SQLAlchemy URL, with every wait bounded."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise Misconfigured(f"only PostgreSQL metadata databases are supported, not {parts.scheme!r}")
    args = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "dbname": parts.path.lstrip("/") or "airflow",
        **dict(parse_qsl(parts.query)),
    }
    args["connect_timeout"] = max(1, math.ceil(timeout))
    args["options"] = f"-c statement_timeout={int(timeout * 1000)}"
    return args


def check(role: str, timeout: float, hostname: str | None = None) -> Verdict:
    job_type, (section, key) = JOBS[role]
    limit = threshold(number(section, key, 5))
    host = hostname or airflow_hostname()
    args = connect_args(required("database", "sql_alchemy_conn"), timeout)
    import psycopg2  # only the probes that need the driver pay for it

    try:
        with psycopg2.connect(**args) as conn, conn.cursor() as cursor:
            cursor.execute(QUERY, (job_type, host))
            row = cursor.fetchone()
        conn.close()
    except psycopg2.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Verdict(UNHEALTHY, f"unhealthy: metadata DB unreachable: {first}")
    if row is None:
        return Verdict(UNHEALTHY, f"unhealthy: no running {job_type} on host {host}")
    age = float(row[0])
    if age > limit:
        return Verdict(
            UNHEALTHY, f"unhealthy: {job_type} on {host} last heartbeat {age:.1f}s ago (limit {limit:g}s)"
        )
    return Verdict(HEALTHY, f"healthy: {job_type} on {host} heartbeat {age:.1f}s ago (limit {limit:g}s)")
