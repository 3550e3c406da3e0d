"""HTTP probes: the api-server's liveness and the scheduler's health server."""

import http.client

from healthchecks import HEALTHY, UNHEALTHY, Verdict
from healthchecks.airflow_config import number


def get(host: str, port: int, path: str, timeout: float) -> Verdict:
    url = f"http://{host}:{port}{path}"
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Verdict(UNHEALTHY, f"unhealthy: GET {url}: {exc or type(exc).__name__}")
    finally:
        connection.close()
    if status == 200:
        return Verdict(HEALTHY, f"healthy: GET {url} -> 200")
    return Verdict(UNHEALTHY, f"unhealthy: GET {url} -> {status}")


def api_server(timeout: float) -> Verdict:
    """Liveness only: /api/v2/monitor/health answers 200 whatever the scheduler's state."""
    port = int(number("api", "port", 8080))
    return get("127.0.0.1", port, "/api/v2/monitor/health", timeout)


def scheduler(timeout: float) -> Verdict:
    """The scheduler's own health server: 200 while this scheduler's heartbeat is fresh."""
    port = int(number("scheduler", "scheduler_health_check_server_port", 8974))
    return get("127.0.0.1", port, "/health", timeout)
