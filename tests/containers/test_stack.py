"""Every role as a container of the image, on the machine's Postgres and Redis.

In order: db-migrate on a fresh database, then the sidecar and the five long-running
roles become healthy (read-only root filesystems), then a worker stopped by SIGTERM
in the middle of a 20 s task lets it finish and exits.
"""

import json
import time

import pytest

from tests.containers.docker import docker, state
from tests.containers.stack import ROLES, published_tree
from tests.e2e import dags
from tests.support.airflow_api import AirflowApi
from tests.support.trees import wait_for

pytestmark = pytest.mark.container

SLEEPER = f"""{dags.HEADER}from airflow.providers.standard.operators.bash import BashOperator

with DAG("sleep_20", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    BashOperator(task_id="sleep", bash_command="sleep 20 && echo slept")
"""
REPORT: dict[str, float] = {}


def test_db_migrate_migrates_a_fresh_database_and_creates_the_admin(stack):
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "AIRFLOW_ADMIN_USERNAME": "ops-admin",
        "AIRFLOW_ADMIN_PASSWORD": "admin-password-for-tests",
    }
    started = time.monotonic()
    code, _out, err = stack.run_once("db-migrate", env=env)
    REPORT["db-migrate"] = time.monotonic() - started
    assert code == 0, err[-3000:]
    assert "airflow-entrypoint: database migrated" in err
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchone()[0]
        cur.execute("SELECT username FROM ab_user")
        assert [row[0] for row in cur.fetchall()] == ["ops-admin"]
    code, _out, err = stack.run_once("db-migrate", env=env)  # a second run is harmless
    assert code == 0, err[-3000:]


def test_every_role_becomes_healthy(stack, tmp_path):
    dags.write(tmp_path / "dags", {"sleeper.py": SLEEPER})
    stack.publish(tmp_path / "dags")
    stack.start_sidecar()
    stack.wait_healthy(["s3sync"], timeout=60)
    wait_for(lambda: published_tree(stack.root) == {"sleeper.py"}, timeout=30, step=0.5, what="the release")
    for role in ROLES:
        stack.start_role(role)
    REPORT.update(stack.wait_healthy(ROLES, timeout=400))
    for role in ROLES:
        health = state(stack.name(role))["Health"]
        assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0
        assert health["Log"][-1]["Output"].startswith("healthy"), health["Log"][-1]
    print("\nseconds from docker run to healthy: " + ", ".join(f"{k} {v:.1f}" for k, v in REPORT.items()))


def test_sigterm_lets_a_running_task_finish_then_the_worker_exits(stack):
    wait_for(lambda: dag_parsed(stack, "sleep_20"), timeout=120, step=1, what="sleep_20 parsed")
    api(stack, "PATCH", "/api/v2/dags/sleep_20", {"is_paused": False})
    run_id = api(stack, "POST", "/api/v2/dags/sleep_20/dagRuns", {"logical_date": None})["dag_run_id"]
    wait_for(lambda: task_state(stack, run_id) == "running", timeout=120, step=0.5, what="the task running")
    time.sleep(3)  # well inside the 20 s sleep
    stopped_at = time.time()
    docker("kill", "--signal", "TERM", stack.name("worker"))
    exit_code = int(docker("wait", stack.name("worker"), timeout=150).stdout.strip())
    log = stack.container_log("worker", 6000)
    assert exit_code == 0, log
    assert "warm shutdown" in log
    assert task_state(stack, run_id) == "success", log
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT EXTRACT(EPOCH FROM end_date) FROM task_instance WHERE run_id = %s", (run_id,))
        ended = float(cur.fetchone()[0])
    assert ended > stopped_at + 10  # it really ran on after the SIGTERM
    finished = state(stack.name("worker"))["FinishedAt"]
    print(
        f"\nworker: SIGTERM at +0 s, task ended at +{ended - stopped_at:.1f} s, container finished {finished}"
    )


def dag_parsed(stack, dag_id: str) -> bool:
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM dag WHERE dag_id = %s", (dag_id,))
        return cur.fetchone() is not None


def task_state(stack, run_id: str) -> str | None:
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT state FROM task_instance WHERE run_id = %s", (run_id,))
        row = cur.fetchone()
        return row[0] if row else None


def api(stack, method: str, path: str, body: dict):
    """The REST API, as the admin whose password SimpleAuthManager generated into the
    api-server's /tmp (the root filesystem is read-only)."""
    generated = "/tmp/simple_auth_manager_passwords.json.generated"
    password = json.loads(docker("exec", stack.name("api-server"), "cat", generated).stdout)["admin"]
    return AirflowApi(stack.api_url, "admin", password)(method, path, body)
