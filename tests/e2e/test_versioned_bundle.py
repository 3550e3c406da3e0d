"""The versioned DAG bundle on the whole stack: a DAG run keeps the release it started on.

The stack serves a second S3 prefix through `s3sync.airflow_bundle.ReleaseBundle` ("releases"),
beside the plain dags_folder bundle; its sidecar collects with keep 1 and no grace, asking the
metadata DB what is in use, and Airflow's own stale-version cleanup runs every 3 s (stack.py).
"""

import contextlib
import json
import re
import subprocess
import time

import pytest

from tests.e2e import dags
from tests.e2e.stack import BIN, VERSIONED_BUNDLE, VERSIONED_URL
from tests.e2e.test_airflow import finished, wait

pytestmark = pytest.mark.e2e

DAG_ID = "ver_two_step"
RETENTION = ["--keep", "1", "--grace", "0", "--bundle-name", VERSIONED_BUNDLE]  # as the stack's sidecar


def sql(stack, query: str, *params) -> list[tuple]:
    with contextlib.closing(stack.db()) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def publish(stack, folder, files: dict[str, str]) -> str:
    out = stack.publish(dags.write(folder, files), VERSIONED_URL)
    return re.search(r"release ([0-9a-f]{20})", out).group(1)


def dag_bundle_version(stack, dag_id: str) -> str | None:
    rows = sql(stack, "SELECT bundle_version FROM dag WHERE dag_id = %s AND NOT is_stale", dag_id)
    return rows[0][0] if rows else None


def run_version(stack, run_id: str) -> str:
    return sql(stack, "SELECT bundle_version FROM dag_run WHERE run_id = %s", run_id)[0][0]


def on_volume(stack) -> set[str]:
    return {p.name for p in (stack.versioned_root / ".s3sync" / "releases").iterdir()}


def local_copies(stack, process: str) -> set[str]:
    folder = stack.bundle_storage(process) / VERSIONED_BUNDLE / "versions"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def trigger(stack, dag_id: str, run_id: str) -> None:
    stack.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})


def task_state(stack, dag_id: str, run_id: str, task_id: str) -> str | None:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]


class Timeline:
    """What happened when, printed at the end (seconds since the test started)."""

    def __init__(self):
        self.started = time.monotonic()
        self.marks: list[tuple[float, str]] = []

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic() - self.started, what))

    def print(self) -> None:
        for at, what in self.marks:
            print(f"{at:7.1f}s  {what}")


def test_a_run_keeps_the_release_it_started_on(stack, tmp_path):
    signals, results = stack.workdir / "signals", stack.workdir / "results"
    signals.mkdir(exist_ok=True)
    results.mkdir(exist_ok=True)
    folder = tmp_path / "versioned"
    timeline = Timeline()

    def tree(code: str) -> dict[str, str]:
        return {"two_step.py": dags.two_step_dag(DAG_ID, code, signals, results)}

    a = publish(stack, folder, tree("A"))
    wait(lambda: dag_bundle_version(stack, DAG_ID) == a, 120, "the DAG parsed from release A", stack)
    timeline.mark(f"release A {a} parsed")
    stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    trigger(stack, DAG_ID, "run-1")
    wait(
        lambda: task_state(stack, DAG_ID, "run-1", "second") == "up_for_reschedule",
        180,
        "task 2 of run-1 to wait for its signal",
        stack,
    )
    assert run_version(stack, "run-1") == a
    timeline.mark("run-1 started on A; task 2 waits")

    b = publish(stack, folder, tree("B"))
    wait(lambda: dag_bundle_version(stack, DAG_ID) == b, 120, "the DAG parsed from release B", stack)
    timeline.mark(f"release B {b} parsed")
    # Acceptance 2: the sidecar collects every 2 s with keep 1 and no grace; A is in use
    time.sleep(8)
    assert on_volume(stack) == {a, b}, "release A was collected while run-1 still runs on it"
    database = {"S3SYNC_IN_USE_DATABASE": stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]}
    dry = stack.s3sync("gc", "--dry-run", "--target", str(stack.versioned_root), *RETENTION, env=database)
    assert a in dry.split("(in use:")[1], dry
    timeline.mark("8 s of collections later, A is still on the volume (in use)")

    # Acceptance 1: task 2 of run-1 runs after B is live, and runs A's code
    (signals / "run-1").touch()
    assert finished(stack, DAG_ID, "run-1", 180) == "success", stack.log_tail("celery-worker")
    assert (results / "run-1").read_text() == "A"
    timeline.mark("run-1 succeeded; task 2 ran A's code")
    (signals / "run-2").touch()
    trigger(stack, DAG_ID, "run-2")
    assert finished(stack, DAG_ID, "run-2", 180) == "success", stack.log_tail("celery-worker")
    assert run_version(stack, "run-2") == b and (results / "run-2").read_text() == "B"
    timeline.mark("run-2 on B succeeded; task 2 ran B's code")

    # Acceptance 2, after: nothing uses A any more, so the sidecar collects it. Until Airflow
    # writes B's DAG version ([core] min_serialized_dag_update_interval, 30 s, after B's parse),
    # A's is the latest one, which callbacks load: A is kept that long too.
    wait(lambda: on_volume(stack) == {b}, 60, "release A collected from the volume", stack)
    timeline.mark("A collected from the volume")
    # Acceptance 3: Airflow's own cleanup removes the worker's unused local copies, without errors
    removal = f"removing stale bundle. bundle_name={VERSIONED_BUNDLE} bundle_version={a}"
    wait(lambda: removal in stack.log_tail("celery-worker", 10**7), 30, "the cleanup to remove A", stack)
    assert a not in local_copies(stack, "celery-worker")
    timeline.mark("Airflow's cleanup removed the worker's copy of A")

    # A fresh worker state, and a release no longer on the volume: it comes from S3
    (results / "run-1").unlink()
    stack.api(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        {"dry_run": False, "dag_run_id": "run-1", "task_ids": ["second"], "only_failed": False},
    )
    assert finished(stack, DAG_ID, "run-1", 180) == "success", stack.log_tail("celery-worker")
    assert (results / "run-1").read_text() == "A" and a not in on_volume(stack)
    timeline.mark("task 2 of run-1 re-run from S3: A's code again")
    timeline.print()

    for process in ("celery-worker", "dag-processor"):
        log = (stack.logs / f"{process}.log").read_text(errors="replace")
        assert "Error removing stale bundle versions" not in log
        assert not re.search(r"Traceback[^\n]*\n(?:[^\n]*\n){0,20}?[^\n]*(remove_stale_bundle|rmtree)", log)
    worker_log = (stack.logs / "celery-worker.log").read_text(errors="replace")
    assert f"bundle_name={VERSIONED_BUNDLE}" in worker_log  # the worker's cleanup did run


def test_bad_bundle_configuration_is_one_clear_line(stack, tmp_path):
    # a root that is not an s3sync ROOT, through the same config Airflow reads
    broken = {"name": "broken", "classpath": "s3sync.airflow_bundle.ReleaseBundle"}
    config = stack.bundles({**broken, "kwargs": {"root": str(tmp_path / "nowhere")}})
    result = subprocess.run(
        [str(BIN / "airflow"), "dags", "reserialize", "--bundle-name", "broken"],
        env={**stack.process_env(), "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = (
        f"bundle broken: {tmp_path / 'nowhere'} is not an s3sync ROOT (no {tmp_path / 'nowhere'}/.s3sync/"
        "releases); set kwargs.root to the sidecar's --target"
    )
    assert result.returncode != 0 and line in result.stdout + result.stderr, result.stderr[-3000:]

    # a DAG run whose version is not a release: its task fails, saying so in one line
    folder = tmp_path / "versioned"
    signals = stack.workdir / "signals"
    files = {
        "two_step.py": dags.two_step_dag(DAG_ID, "B", signals, stack.workdir / "results"),
        "bad_version.py": dags.manual_dag("ver_bad_version", "runs on a version that is no release"),
    }
    publish(stack, folder, files)
    wait(lambda: dag_bundle_version(stack, "ver_bad_version"), 120, "ver_bad_version parsed", stack)
    trigger(stack, "ver_bad_version", "bad")  # the DAG is paused: the run waits, queued
    sql_conn = stack.db()
    with contextlib.closing(sql_conn), sql_conn.cursor() as cur:
        cur.execute("UPDATE dag_run SET bundle_version = 'main' WHERE run_id = 'bad'")
        sql_conn.commit()
    stack.api("PATCH", "/api/v2/dags/ver_bad_version", {"is_paused": False})
    assert finished(stack, "ver_bad_version", "bad", 180) == "failed"
    log = stack.api("GET", "/api/v2/dags/ver_bad_version/dagRuns/bad/taskInstances/work/logs/1")
    said = json.dumps(log)
    line = f"bundle {VERSIONED_BUNDLE}: 'main' is not an s3sync release id (20 lowercase hex characters)"
    assert json.dumps(line)[1:-1] in said, said[-3000:]
