"""HTTP probes: the api-server's liveness and the scheduler's health server.

A bare HTTP/1.0 GET over a socket: http.client would cost more to import than the check.
"""

import socket

from healthchecks import HEALTHY, UNHEALTHY, Verdict
from healthchecks.airflow_config import number


def get(host: str, port: int, path: str, timeout: float) -> Verdict:
    url = f"http://{host}:{port}{path}"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            status_line = sock.makefile("rb").readline(256).decode("latin-1").strip()
    except OSError as exc:
        return Verdict(UNHEALTHY, f"unhealthy: GET {url}: {exc or type(exc).__name__}")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        return Verdict(UNHEALTHY, f"unhealthy: GET {url}: no HTTP answer ({status_line[:60]!r})")
    if parts[1] == "200":
        return Verdict(HEALTHY, f"healthy: GET {url} -> 200")
    return Verdict(UNHEALTHY, f"unhealthy: GET {url} -> {parts[1]}")


def api_server(timeout: float) -> Verdict:
    """Liveness only: /api/v2/monitor/health answers 200 whatever the scheduler's state."""
    port = int(number("api", "port", 8080))
    return get("127.0.0.1", port, "/api/v2/monitor/health", timeout)


def scheduler(timeout: float) -> Verdict:
    """The scheduler's own health server: 200 while this scheduler's heartbeat is fresh."""
    port = int(number("scheduler", "scheduler_health_check_server_port", 8974))
    return get("127.0.0.1", port, "/health", timeout)
