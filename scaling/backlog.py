"""What the Celery workers have to do: task instances queued and running in the metadata DB,
and the messages waiting in the broker's queues. Never imports Airflow."""

import math
from dataclasses import dataclass

# Task instances the Celery executor runs: Airflow leaves `executor` empty for the default one.
CELERY_EXECUTORS = ("CeleryExecutor", "airflow.providers.celery.executors.celery_executor.CeleryExecutor")
TASK_INSTANCES = """
    SELECT state, count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(queued_dttm)), 0)
    FROM task_instance
    WHERE state IN ('queued', 'running') AND (executor IS NULL OR executor IN %s)
    GROUP BY state
"""
# kombu's Redis transport keeps one list per priority step; 0 is the bare queue name.
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEPARATOR = "\x06\x16"


@dataclass(frozen=True)
class Backlog:
    queued: int
    running: int
    oldest_queued_age: float  # seconds the longest-waiting queued task has waited; 0 if none

    @property
    def total(self) -> int:
        return self.queued + self.running


def desired_workers(backlog: int, concurrency: int, maximum: int | None = None) -> int:
    """Workers that run the whole backlog at once: ceil(backlog / concurrency), capped."""
    wanted = math.ceil(backlog / concurrency)
    return wanted if maximum is None else min(wanted, maximum)


def read_task_instances(connection) -> Backlog:
    """One query on an open psycopg2 connection."""
    with connection.cursor() as cursor:
        cursor.execute(TASK_INSTANCES, (CELERY_EXECUTORS,))
        rows = {state: (int(count), float(age)) for state, count, age in cursor.fetchall()}
    queued, queued_age = rows.get("queued", (0, 0.0))
    running, _ = rows.get("running", (0, 0.0))
    return Backlog(queued, running, max(queued_age, 0.0) if queued else 0.0)


def broker_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def read_broker_queues(client, queues: tuple[str, ...]) -> dict[str, int]:
    """Messages waiting per Celery queue (not yet taken by a worker), on a redis-py client."""
    pipeline = client.pipeline(transaction=False)
    for queue in queues:
        for key in broker_keys(queue):
            pipeline.llen(key)
    lengths = iter(pipeline.execute())
    return {queue: sum(next(lengths) for _ in PRIORITY_STEPS) for queue in queues}
