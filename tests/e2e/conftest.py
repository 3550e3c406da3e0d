"""The end-to-end tier: one local Airflow 3.1 stack per test session (see stack.py)."""

import pytest

from tests.e2e.stack import LocalStack


@pytest.fixture(scope="session")
def stack():
    running = LocalStack().start()
    try:
        yield running
    finally:
        running.stop()
    assert running.leftovers() == []
