"""docker-compose.yml on a clean copy of this checkout, as a newcomer runs it.

In order: the file passes `docker compose config` silently and wires what the stack
needs; `docker compose up --build -d` gets every service healthy; a DAG file written
into ./dags runs on the worker, a same-size edit and a deletion follow; a killed sidecar
leaves Airflow on the last good release, and the sidecar restarts and converges; a
restarted local S3 starts a new release history that the sidecar follows;
`docker compose down -v` leaves nothing behind.
"""

import json
import os
import subprocess
import time
import urllib.parse
from datetime import datetime

import pytest

from tests.containers.compose import LONG_RUNNING, ONE_OFF, UNCHECKED
from tests.support.trees import wait_for

pytestmark = pytest.mark.container

AIRFLOW_ROLES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")
PROBE_FILE = "compose_probe.py"
REPORT: dict[str, float] = {}


def probe_dag(version: str) -> str:
    """Runs once by itself as soon as it is parsed; every version has the same size."""
    return f'''from datetime import datetime

from airflow.sdk import DAG, task

VERSION = "{version}"

with DAG("compose_probe", schedule="@once", start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=False):

    @task
    def report():
        print(f"compose_probe {{VERSION}} ran")

    report()
'''


def test_the_compose_file_passes_config_without_warnings_and_wires_the_stack(compose_project):
    bare = {k: v for k, v in compose_project.env.items() if k not in ("AIRFLOW_UI_PORT", "BUILD_CA_BUNDLE")}
    quiet = compose_project.compose("config", "--quiet", env=bare)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr

    config = json.loads(compose_project.compose("config", "--format", "json").stdout)
    services = config["services"]
    assert set(services) == {*LONG_RUNNING, *ONE_OFF}
    for role in AIRFLOW_ROLES:
        service = services[role]
        assert service["image"] == services["db-migrate"]["image"]
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "healthchecks", role]
        assert service["read_only"] is True
        assert service["depends_on"]["db-migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["s3sync"]["condition"] == "service_healthy"
        assert _mount(service, "/opt/airflow/dags-root") == ("dags-root", True)
    assert _mount(services["s3sync"], "/opt/airflow/dags-root") == ("dags-root", False)
    assert services["publisher"]["command"][:2] == ["publish", "--watch"]
    assert services["worker"]["depends_on"]["api-server"]["condition"] == "service_healthy"
    assert services["api-server"]["ports"][0]["host_ip"] == "127.0.0.1"


def test_up_build_gets_every_service_healthy(compose_project):
    started = time.monotonic()
    up = subprocess.Popen(
        compose_project.command("up", "--build", "-d"),
        env=compose_project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    healthy_at: dict[str, float] = {}
    expected = {s for s in LONG_RUNNING if s not in UNCHECKED}
    deadline = started + 600
    while time.monotonic() < deadline and (up.poll() is None or set(healthy_at) != expected):
        for name, row in compose_project.services().items():
            if name in expected and name not in healthy_at and row.get("Health") == "healthy":
                healthy_at[name] = time.monotonic() - started
        time.sleep(0.5)
    output = up.communicate(timeout=60)[0]
    assert up.returncode == 0, output[-4000:]
    assert set(healthy_at) == expected, (sorted(expected - set(healthy_at)), compose_project.logs())

    services = compose_project.services()
    assert services["publisher"]["State"] == "running"
    for name in ONE_OFF:
        assert (services[name]["State"], services[name]["ExitCode"]) == ("exited", 0), name
    welcome = compose_project.logs("welcome")
    assert f"http://localhost:{compose_project.port}" in welcome
    assert "(login admin / admin)" in welcome
    REPORT["up --build -d, all healthy"] = max(healthy_at.values())
    times = ", ".join(f"{name} {seconds:.1f}" for name, seconds in healthy_at.items())
    print(f"\nseconds from `up --build -d` to healthy: {times}")


def test_a_dag_file_in_dags_runs_and_an_edit_and_a_deletion_follow(compose_project):
    project = compose_project
    written = time.time()
    (project.dags / PROBE_FILE).write_text(probe_dag("v1"))
    first = wait_for(lambda: _finished_run(project, "scheduled"), timeout=240, step=0.5, what="the @once run")
    assert first["state"] == "success", first
    REPORT["file written -> first task success"] = _end(project, first) - written
    assert "compose_probe v1 ran" in _task_log(project, first["dag_run_id"])

    edited = time.time()
    (project.dags / PROBE_FILE).write_text(probe_dag("v2"))  # same size, new content
    wait_for(lambda: 'VERSION = "v2"' in _source(project), timeout=120, step=0.5, what="the edit parsed")
    REPORT["same-size edit -> parsed"] = time.time() - edited
    run = _trigger_and_wait(project)
    ti = _task_instance(project, run["dag_run_id"])
    assert ti["hostname"] == project.inspect("worker")["Config"]["Hostname"]  # ran on the worker
    assert "compose_probe v2 ran" in _task_log(project, run["dag_run_id"])

    deleted = time.time()
    (project.dags / PROBE_FILE).unlink()
    wait_for(lambda: "compose_probe" not in _dag_ids(project), timeout=180, step=1, what="the DAG gone")
    REPORT["deletion -> gone from the DAG list"] = time.time() - deleted
    assert project.api("GET", "/api/v2/dags/compose_probe")["is_stale"] is True
    assert "example_hello" in _dag_ids(project)  # the rest of ./dags stays


def test_a_killed_sidecar_leaves_the_last_release_live_then_restarts_and_converges(compose_project):
    project = compose_project
    (project.dags / PROBE_FILE).write_text(probe_dag("v3"))
    wait_for(lambda: 'VERSION = "v3"' in _source(project), timeout=120, step=0.5, what="v3 parsed")
    release = project.live_release()

    # Killed on request: Docker leaves it down, so Airflow must carry on without it.
    project.compose("kill", "s3sync")
    assert project.services()["s3sync"]["State"] == "exited"
    published = _publications(project)
    (project.dags / PROBE_FILE).write_text(probe_dag("v4"))
    wait_for(lambda: _publications(project) > published, timeout=60, step=0.5, what="v4 published")
    time.sleep(12)  # several sidecar polls and dag-processor refreshes
    assert project.live_release() == release
    assert 'VERSION = "v3"' in _source(project)
    assert project.api("GET", "/api/v2/dags/compose_probe")["is_stale"] is False
    run = _trigger_and_wait(project)
    assert "compose_probe v3 ran" in _task_log(project, run["dag_run_id"])

    project.compose("start", "s3sync")
    wait_for(lambda: project.live_release() != release, timeout=60, step=0.5, what="the sidecar catching up")
    wait_for(lambda: 'VERSION = "v4"' in _source(project), timeout=120, step=0.5, what="v4 parsed")

    # Crashed (SIGKILL from outside, as the OOM killer would): the restart policy brings it back.
    pid = project.inspect("s3sync")["State"]["Pid"]
    os.kill(pid, 9)
    wait_for(lambda: project.inspect("s3sync")["RestartCount"] >= 1, timeout=60, step=0.5, what="a restart")
    wait_for(lambda: _health(project, "s3sync") == "healthy", timeout=90, step=0.5, what="healthy again")
    (project.dags / PROBE_FILE).write_text(probe_dag("v5"))
    wait_for(lambda: 'VERSION = "v5"' in _source(project), timeout=120, step=0.5, what="v5 parsed")
    run = _trigger_and_wait(project)
    assert "compose_probe v5 ran" in _task_log(project, run["dag_run_id"])


def test_a_restarted_local_s3_starts_a_new_history_that_the_sidecar_follows(compose_project):
    """moto keeps nothing across a restart; the DAG volume keeps its higher generation."""
    project = compose_project
    before = _sidecar_state(project)
    project.compose("restart", "aws")
    project.compose("restart", "aws-init", "publisher")  # as docs/compose.md says
    (project.dags / PROBE_FILE).write_text(probe_dag("v6"))
    wait_for(lambda: 'VERSION = "v6"' in _source(project), timeout=120, step=0.5, what="v6 parsed")
    after = _sidecar_state(project)
    assert after["generation"] < before["generation"] and after["source"] != before["source"]
    run = _trigger_and_wait(project)
    assert "compose_probe v6 ran" in _task_log(project, run["dag_run_id"])


def test_down_v_leaves_no_container_volume_or_network(compose_project):
    assert compose_project.leftovers() != []  # the stack is still up here
    REPORT["down -v"] = compose_project.down()
    assert compose_project.leftovers() == []
    print("\n" + "\n".join(f"{what}: {seconds:.1f} s" for what, seconds in REPORT.items()))


# -- helpers --------------------------------------------------------------------------


def _mount(service: dict, target: str) -> tuple[str, bool]:
    volume = next(v for v in service["volumes"] if v["target"] == target)
    return volume["source"], bool(volume.get("read_only"))


def _dag_ids(project) -> set[str]:
    return {dag["dag_id"] for dag in project.api("GET", "/api/v2/dags?limit=100")["dags"]}


def _source(project) -> str:
    source = project.api("GET", "/api/v2/dagSources/compose_probe")
    return source["content"] if source else ""


def _runs(project) -> list[dict]:
    found = project.api("GET", "/api/v2/dags/compose_probe/dagRuns?limit=100")
    return found["dag_runs"] if found else []


def _finished_run(project, run_type: str) -> dict | None:
    done = [r for r in _runs(project) if r["run_type"] == run_type and r["state"] in ("success", "failed")]
    return done[0] if done else None


def _trigger_and_wait(project) -> dict:
    run_id = project.api("POST", "/api/v2/dags/compose_probe/dagRuns", {"logical_date": None})["dag_run_id"]
    run = wait_for(
        lambda: next((r for r in _runs(project) if r["dag_run_id"] == run_id and r["end_date"]), None),
        timeout=180,
        step=0.5,
        what=f"run {run_id}",
    )
    assert run["state"] == "success", (run, project.logs("worker"))
    return run


def _task_instance(project, run_id: str) -> dict:
    return project.api("GET", f"{_run_path(run_id)}/taskInstances")["task_instances"][0]


def _end(project, run: dict) -> float:
    return datetime.fromisoformat(_task_instance(project, run["dag_run_id"])["end_date"]).timestamp()


def _task_log(project, run_id: str) -> str:
    """The task's log as the UI shows it: read back from the local S3 by the api-server."""
    return json.dumps(project.api("GET", f"{_run_path(run_id)}/taskInstances/report/logs/1"))


def _run_path(run_id: str) -> str:
    return f"/api/v2/dags/compose_probe/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def _health(project, service: str) -> str | None:
    return project.services()[service].get("Health")


def _sidecar_state(project) -> dict:
    return json.loads(project.exec("s3sync", "cat", "/opt/airflow/dags-root/.s3sync/state.json"))


def _publications(project) -> int:
    return project.logs("publisher", size=1_000_000).count("published release")
