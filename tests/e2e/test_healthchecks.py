"""The probes against real Airflow 3.1.8 components, PostgreSQL and Redis."""

import signal
import socket
import subprocess
import time

import pytest

from tests.e2e.conftest import SOAK_ROLES, SOAK_SECONDS
from tests.e2e.stack import BIN
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.e2e
ROLES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker", "s3sync")


def probe(stack, role: str, *args: str, **env: str) -> tuple[int, str, float]:
    environment = {**stack.process_env(), **env}
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN / "healthcheck"), role, *args], capture_output=True, text=True, env=environment, timeout=60
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.returncode, lines[0], time.monotonic() - started


def wait_for_code(stack, role: str, code: int, timeout: float, hostname: str | None = None):
    started = time.monotonic()
    while True:
        got, line, _ = probe(stack, role, *(["--hostname", hostname] if hostname else []))
        if got == code:
            return line, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{role}: still exit {got} after {timeout:g}s: {line}")
        time.sleep(1)


@pytest.fixture
def blackhole():
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_role_is_healthy_while_it_runs(stack):
    for role in ROLES:
        line, _ = wait_for_code(stack, role, 0, timeout=90)
        assert line.startswith("healthy: ")


def test_probes_never_import_airflow_or_celery(stack):
    for role in ("dag-processor", "worker", "scheduler"):
        result = subprocess.run(
            [str(BIN / "python"), "-X", "importtime", "-m", "healthchecks", role],
            capture_output=True,
            text=True,
            env=stack.process_env(),
            timeout=60,
        )
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()}
        assert not imported & {"airflow", "celery", "boto3", "botocore", "sqlalchemy"}, role


def test_probes_are_bounded_when_peers_hang(stack, blackhole):
    cases = {
        "api-server": {"AIRFLOW__API__PORT": str(blackhole)},
        "scheduler": {"AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(blackhole)},
        "dag-processor": {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql://postgres@127.0.0.1:{blackhole}/x"
        },
        "worker": {"AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{blackhole}/0"},
    }
    for role, env in cases.items():
        code, line, seconds = probe(stack, role, "--timeout", "2", **env)
        assert code == 1 and line.startswith("unhealthy: "), (role, line)
        assert seconds < 6, (role, seconds)


def test_unreachable_database_and_broker_are_unhealthy(stack, closed_port):
    db = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql://postgres@127.0.0.1:{closed_port}/x"}
    for role in ("dag-processor", "triggerer"):
        code, line, _ = probe(stack, role, **db)
        assert code == 1 and "metadata DB unreachable" in line, line
    code, line, _ = probe(stack, "worker", AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{closed_port}/0")
    assert code == 1 and "broker unreachable" in line, line


def test_misconfiguration_exits_2(stack):
    code, line, _ = probe(stack, "dag-processor", AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="mysql://x@h/db")
    assert code == 2 and line.startswith("misconfigured: only PostgreSQL"), line
    code, line, _ = probe(stack, "triggerer", AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="soon")
    assert code == 2 and "not a number" in line, line


def test_another_hosts_heartbeat_does_not_count(stack):
    for role in ("dag-processor", "triggerer"):
        code, line, _ = probe(stack, role, "--hostname", "some-other-task.internal")
        assert code == 1 and "on host some-other-task.internal" in line, line


def test_no_flapping_while_the_stack_works(soak):
    """Every role probed every 5 s (for 2 minutes in CI; HEALTHCHECK_SOAK_SECONDS=600 for the
    10-minute soak), during the twenty-release test's parsing and runs: no false alarm."""
    soak.finish(SOAK_SECONDS)
    print(f"soak: {soak.rounds} rounds x {len(SOAK_ROLES)} roles, false alarms: {soak.false_alarms}")
    assert soak.rounds >= 0.9 * SOAK_SECONDS / soak.every
    assert soak.false_alarms == []


PROCESS = {"worker": "celery-worker"}  # role -> the stack's process name
HEARTBEAT_ROLES = ("dag-processor", "triggerer", "worker")  # threshold 30 s at the 5 s pace
OTHER_HOST = "other-task.internal"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
def test_killed_or_frozen_components_turn_unhealthy_within_their_threshold(stack, signum):
    """Every role at once; a second dag-processor on another host stays healthy meanwhile
    and never makes this host's dead one look alive."""
    stack.start_as_other_host("dag-processor-2", "dag-processor", OTHER_HOST)
    roles = ("api-server", "scheduler", *HEARTBEAT_ROLES)
    try:
        wait_for_code(stack, "dag-processor", 0, timeout=90, hostname=OTHER_HOST)
        for role in roles:
            stack.signal(PROCESS.get(role, role), signum)
        for role in ("api-server", "scheduler"):  # gone or frozen: no answer within the timeout
            code, line, seconds = probe(stack, role, "--timeout", "3")
            assert code == 1 and seconds < 6, (role, line)
        for role in HEARTBEAT_ROLES:
            line, seconds = wait_for_code(stack, role, 1, timeout=45)
            print(f"{signal.Signals(signum).name} {role}: unhealthy after {seconds:.0f}s: {line}")
        code, line, _ = probe(stack, "dag-processor", "--hostname", OTHER_HOST)
        assert code == 0, line
    finally:
        for role in roles:
            if signum == signal.SIGSTOP:
                stack.signal(PROCESS.get(role, role), signal.SIGCONT)
            else:
                stack.restart(PROCESS.get(role, role))
        stack.stop_process("dag-processor-2")
    for role in ROLES:
        wait_for_code(stack, role, 0, timeout=120)


def test_a_scheduler_that_loses_its_database_turns_unhealthy(stack):
    """The scheduler's health server goes 503 (or away) once its heartbeat cannot reach the DB."""
    proxy = TcpProxy(5432)
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/{stack.database}"
    stack.stop_process("scheduler")
    stack.start_with_env("scheduler", {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url})
    try:
        wait_for_code(stack, "scheduler", 0, timeout=120)
        proxy.cut()
        line, seconds = wait_for_code(stack, "scheduler", 1, timeout=60)
        print(f"scheduler without its DB: unhealthy after {seconds:.0f}s: {line}")
    finally:
        proxy.close()
        stack.stop_process("scheduler")
        stack.start_with_env("scheduler", {})
    wait_for_code(stack, "scheduler", 0, timeout=120)
