"""Celery worker: THIS worker's event loop is turning, and its broker answers.

The worker touches a liveness file from its own event loop (celery_liveness.py, loaded
through [celery] celery_config_options), so a hung or stopped worker goes stale; no
message is broadcast to other workers.
"""

import os
import socket
import time

from healthchecks import HEALTHY, UNHEALTHY, Misconfigured, Verdict
from healthchecks.airflow_config import required

LIVENESS_FILE = "AIRFLOW_WORKER_LIVENESS_FILE"
DEFAULT_LIVENESS_FILE = "/tmp/airflow-worker-alive"
TOUCH_EVERY = 5.0
STALE_AFTER = 30.0


def liveness_file() -> str:
    return os.environ.get(LIVENESS_FILE, DEFAULT_LIVENESS_FILE)


def check(timeout: float) -> Verdict:
    path = liveness_file()
    try:
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return Verdict(UNHEALTHY, f"unhealthy: worker not ready (no {path})")
    if age > STALE_AFTER:
        return Verdict(
            UNHEALTHY, f"unhealthy: worker loop stalled, {path} is {age:.0f}s old (limit {STALE_AFTER:g}s)"
        )
    broker = required("celery", "broker_url")
    try:
        redis_ping(broker, timeout)
    except OSError as exc:
        return Verdict(UNHEALTHY, f"unhealthy: broker unreachable: {exc or type(exc).__name__}")
    return Verdict(HEALTHY, f"healthy: worker loop {age:.0f}s ago, broker answers")


def redis_ping(url: str, timeout: float) -> None:
    """PING the Redis broker (AUTH first when the URL carries a password; TLS for rediss://).

    A few lines of RESP instead of redis-py, whose import alone costs more than the probe.
    """
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise Misconfigured(f"only Redis brokers are supported, not {parts.scheme!r}")
    host, port = parts.hostname or "localhost", parts.port or 6379
    commands = []
    if parts.password:
        user = [unquote(parts.username)] if parts.username else []
        commands.append(["AUTH", *user, unquote(parts.password)])
    commands.append(["PING"])
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = raw
        if parts.scheme == "rediss":
            import ssl

            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        sock.sendall(b"".join(_resp(command) for command in commands))
        replies = sock.makefile("rb")
        for command in commands:
            reply = replies.readline(512).decode("latin-1").strip()
            if not reply.startswith("+"):
                raise ConnectionError(f"{command[0]} -> {reply[:80] or 'connection closed'}")


def _resp(command: list[str]) -> bytes:
    parts = [f"*{len(command)}\r\n".encode()]
    for word in command:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)
