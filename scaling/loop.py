"""Every interval: read the backlog, print it as CloudWatch EMF lines. Never dies of an outage.

A metadata DB or broker that cannot be read costs that poll its metrics and one log line
(when the error changes, and once more when it clears); the loop carries on.
"""

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from s3sync.metrics import emit
from scaling.backlog import Backlog, desired_workers, read_broker_queues, read_task_instances

NAMESPACE = "airflow-ecs/workers"


@dataclass(frozen=True)
class LoopSettings:
    deployment: str  # the Deployment dimension: which Airflow this is
    concurrency: int  # tasks one worker runs at once ([celery] worker_concurrency)
    queues: tuple[str, ...]
    interval: float = 15.0
    max_workers: int | None = None


class Source:
    """A connection opened on first use, dropped after any error so the next poll reconnects."""

    def __init__(self, name: str, connect: Callable[[], object], read: Callable[[object], object]):
        self.name, self.connect, self.read = name, connect, read
        self.connection = None
        self.error: str | None = None

    def poll(self, log):
        try:
            if self.connection is None:
                self.connection = self.connect()
            value = self.read(self.connection)
        except Exception as exc:  # any driver's error is an outage to report, never a crash
            self.close()
            error = " ".join(f"{type(exc).__name__}: {exc}".split())
            if error != self.error:
                log.error(f"{self.name} unreadable", error=error)
            self.error = error
            return None
        if self.error is not None:
            log.info(f"{self.name} readable again")
            self.error = None
        return value

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                connection.close()


class MetricsLoop:
    def __init__(self, settings: LoopSettings, database: Source, broker: Source, log, out=None):
        self.settings, self.database, self.broker, self.log, self.out = settings, database, broker, log, out
        self.stop = threading.Event()

    def run(self) -> int:
        self.log.info("starting", interval=self.settings.interval, queues=list(self.settings.queues))
        while not self.stop.is_set():
            started = time.monotonic()
            self.once()
            self.stop.wait(max(0.0, self.settings.interval - (time.monotonic() - started)))
        self.database.close()
        self.broker.close()
        self.log.info("stopped")
        return 0

    def once(self) -> None:
        dimensions = {"Deployment": self.settings.deployment}
        backlog = self.database.poll(self.log)
        if isinstance(backlog, Backlog):
            wanted = desired_workers(backlog.total, self.settings.concurrency, self.settings.max_workers)
            metrics = {
                "Queued": (backlog.queued, "Count"),
                "Running": (backlog.running, "Count"),
                "Backlog": (backlog.total, "Count"),
                "DesiredWorkers": (wanted, "Count"),
                "OldestQueuedAge": (round(backlog.oldest_queued_age, 3), "Seconds"),
            }
            emit(metrics, dimensions, self.out, NAMESPACE)
        lengths = self.broker.poll(self.log)
        if isinstance(lengths, dict):
            for queue, length in lengths.items():
                emit({"BrokerQueued": (length, "Count")}, {**dimensions, "Queue": queue}, self.out, NAMESPACE)


def database_source(connect_args: dict) -> Source:
    def connect():
        import psycopg2  # only here: the probes and tests that never poll do not need it

        connection = psycopg2.connect(**connect_args)
        connection.autocommit = True  # every poll sees what is committed now
        return connection

    return Source("metadata DB", connect, read_task_instances)


def broker_source(url: str, queues: tuple[str, ...], timeout: float) -> Source:
    def connect():
        import redis

        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    return Source("broker", connect, lambda client: read_broker_queues(client, queues))
