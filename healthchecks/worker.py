"""Celery worker: THIS worker's event loop is turning, and its broker answers.

The worker touches a liveness file from its own event loop (celery_liveness.py, loaded
through [celery] celery_config_options), so a hung or stopped worker goes stale; no
message is broadcast to other workers.
"""

import os
import time
from pathlib import Path

from healthchecks import HEALTHY, UNHEALTHY, Verdict
from healthchecks.airflow_config import required

LIVENESS_FILE = "AIRFLOW_WORKER_LIVENESS_FILE"
DEFAULT_LIVENESS_FILE = "/tmp/airflow-worker-alive"
TOUCH_EVERY = 5.0
STALE_AFTER = 30.0


def liveness_file() -> Path:
    return Path(os.environ.get(LIVENESS_FILE, DEFAULT_LIVENESS_FILE))


def check(timeout: float) -> Verdict:
    path = liveness_file()
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return Verdict(UNHEALTHY, f"unhealthy: worker not ready (no {path})")
    if age > STALE_AFTER:
        return Verdict(
            UNHEALTHY, f"unhealthy: worker loop stalled, {path} is {age:.0f}s old (limit {STALE_AFTER:g}s)"
        )
    broker = required("celery", "broker_url")
    import redis  # only this probe pays for the driver

    try:
        client = redis.Redis.from_url(broker, socket_timeout=timeout, socket_connect_timeout=timeout)
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return Verdict(UNHEALTHY, f"unhealthy: broker unreachable: {exc}")
    return Verdict(HEALTHY, f"healthy: worker loop {age:.0f}s ago, broker answers")
