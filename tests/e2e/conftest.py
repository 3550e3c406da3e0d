"""The end-to-end tier: one local Airflow 3.1 stack per test session (see stack.py)."""

import os
import subprocess
import threading
import time

import pytest

from tests.e2e.stack import BIN, LocalStack

SOAK_ROLES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker", "s3sync")


@pytest.fixture(scope="session")
def stack():
    running = LocalStack().start()
    try:
        yield running
    finally:
        running.stop()
    assert running.leftovers() == []


class Soak(threading.Thread):
    """Probes every role every `every` seconds while other tests make the stack work."""

    def __init__(self, stack, every: float = 5.0):
        super().__init__(daemon=True)
        self.stack, self.every = stack, every
        self.started_at = time.monotonic()
        self.rounds = 0
        self.false_alarms: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        env = self.stack.process_env()
        next_round = time.monotonic() + self.every
        while not self.halt.wait(max(0.0, next_round - time.monotonic())):  # every 5 s, start to start
            next_round += self.every
            for role in SOAK_ROLES:
                result = subprocess.run(
                    [str(BIN / "healthcheck"), role], capture_output=True, text=True, env=env, timeout=30
                )
                if result.returncode != 0:
                    self.false_alarms.append(f"{role}: {result.stdout.strip()}")
            self.rounds += 1

    def finish(self, seconds: float) -> None:
        """Let the soak run for at least `seconds` in all, then stop it."""
        time.sleep(max(0.0, seconds - (time.monotonic() - self.started_at)))
        self.halt.set()
        self.join()


@pytest.fixture(scope="session")
def soak(stack):
    """Started by the first test that asks (the busiest one), judged in test_healthchecks."""
    prober = Soak(stack)
    prober.start()
    yield prober
    prober.halt.set()


SOAK_SECONDS = float(os.environ.get("HEALTHCHECK_SOAK_SECONDS", "120"))
