"""End to end on Airflow 3.1.8: DAGs published to S3 reach Airflow through s3sync and run on Celery."""

import os
import statistics
import subprocess
import threading
import time

import pytest

from tests.e2e import dags
from tests.e2e.stack import BIN, BUCKET
from tests.support.trees import wait_for

pytestmark = pytest.mark.e2e


def wait(predicate, timeout: float, what: str, stack, step: float = 0.5):
    """wait_for, failing at once if a component of the stack has died meanwhile."""

    def ready():
        stack.check_processes()
        return predicate()

    return wait_for(ready, timeout, step, what)


def dag_or_none(stack, dag_id: str) -> dict | None:
    return stack.api("GET", f"/api/v2/dags/{dag_id}", missing_ok=True)


def run_state(stack, dag_id: str, run_id: str) -> str:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]


def finished(stack, dag_id: str, run_id: str, timeout: float, step: float = 0.5) -> str:
    """Wait for a DAG run to end; its final state."""

    def ended() -> str | None:
        state = run_state(stack, dag_id, run_id)
        return state if state in ("success", "failed") else None

    return wait(ended, timeout, f"the {dag_id} run to finish", stack, step)


def test_published_dag_runs_on_celery_reads_secrets_and_logs_to_s3(stack, tmp_path):
    stack.secretsmanager.create_secret(
        Name="airflow/connections/e2e_secret", SecretString="http://e2e:pw@secret-host.internal:8443"
    )
    stack.publish(dags.write(tmp_path / "dags", {"hello.py": dags.SECRET_READER}))
    dag = wait(lambda: dag_or_none(stack, "e2e_hello"), 120, "e2e_hello in the REST API", stack)
    assert dag["relative_fileloc"] == "hello.py" and dag["fileloc"].endswith("/current/hello.py")
    stack.api("PATCH", "/api/v2/dags/e2e_hello", {"is_paused": False})
    run_id = stack.api("POST", "/api/v2/dags/e2e_hello/dagRuns", {"logical_date": None})["dag_run_id"]
    state = finished(stack, "e2e_hello", run_id, 180)
    assert state == "success", stack.log_tail("celery-worker")
    health = subprocess.run(
        [str(BIN / "s3sync"), "health"], capture_output=True, text=True, env=stack.process_env()
    )
    assert health.returncode == 0 and health.stdout.startswith("healthy: release"), health.stdout

    def uploaded_logs():  # the worker uploads the log just after it reports the state
        listing = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/dag_id=e2e_hello/")
        return listing.get("Contents", [])

    wait(uploaded_logs, 60, "the task log in S3", stack)
    local = list((stack.home / "logs" / "dag_id=e2e_hello").rglob("*.log"))
    assert local == [], "remote logging should not leave local task logs"
    log = stack.api("GET", f"/api/v2/dags/e2e_hello/dagRuns/{run_id}/taskInstances/work/logs/1")
    text = "\n".join(str(line.get("event", "")) for line in log["content"])
    assert "connection host is secret-host.internal" in text
    sources = [src for line in log["content"] for src in line.get("sources", [])]
    assert sources and all(src.startswith(f"s3://{BUCKET}/logs/") for src in sources), sources


class DagTableWatcher(threading.Thread):
    """Samples the `dag` table; records any fileloc change and any unexpected stale flag."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.allowed_stale: set[str] = set()
        self.fileloc: dict[str, tuple[str, str]] = {}
        self.violations: list[str] = []
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with self.stack.db() as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                while not self.halt.is_set():
                    cur.execute("SELECT dag_id, is_stale, fileloc, relative_fileloc FROM dag")
                    for dag_id, is_stale, fileloc, relative in cur.fetchall():
                        self.check(dag_id, is_stale, (fileloc, relative))
                    self.samples += 1
                    time.sleep(0.25)

    def check(self, dag_id: str, is_stale: bool, where: tuple[str, str]) -> None:
        if dag_id in self.allowed_stale or not dag_id.startswith("rel_"):
            return
        first = self.fileloc.setdefault(dag_id, where)
        if where != first:
            self.violations.append(f"{dag_id} moved from {first} to {where}")
        if is_stale:
            self.violations.append(f"{dag_id} marked stale")


def test_twenty_releases_keep_dags_stable(stack, soak, tmp_path):
    """`soak` probes every component meanwhile (judged in test_healthchecks)."""
    folder = tmp_path / "dags"
    helper = "helpers/words_v1.py"
    files = {
        "rel_edit.py": dags.manual_dag("rel_edit", "release 0"),
        "rel_keep.py": dags.manual_dag(
            "rel_keep", "steady", imports="from helpers.words_v1 import WORD\n", body="print(WORD)"
        ),
        "rel_doomed.py": dags.manual_dag("rel_doomed", "to be deleted"),
        helper: 'WORD = "v1"\n',
        "helpers/__init__.py": "",
    }
    stack.publish(dags.write(folder, files))
    for dag_id in ("rel_edit", "rel_keep", "rel_doomed"):
        wait(lambda d=dag_id: dag_or_none(stack, d), 120, dag_id, stack)
    watcher = DagTableWatcher(stack)
    watcher.start()
    expected = {"rel_edit", "rel_keep", "rel_doomed"}
    try:
        for number in range(1, 21):
            files["rel_edit.py"] = dags.manual_dag("rel_edit", f"release {number}")
            if number == 4:
                files["rel_added.py"] = dags.manual_dag("rel_added", "added in release 4")
                expected.add("rel_added")
            if number == 8:
                watcher.allowed_stale.add("rel_doomed")
                del files["rel_doomed.py"]
                expected.discard("rel_doomed")
            if number == 12:  # rename a module the DAG imports
                del files[helper]
                helper = "helpers/words_v2.py"
                files[helper] = 'WORD = "v2"\n'
                files["rel_keep.py"] = files["rel_keep.py"].replace("words_v1", "words_v2")
            if number == 15:
                files["team/rel_nested.py"] = dags.manual_dag("rel_nested", "in a subfolder")
                expected.add("rel_nested")
            stack.publish(dags.write(folder, files))
            wait(
                lambda n=number: dag_or_none(stack, "rel_edit")["description"] == f"release {n}",
                90,
                f"release {number}'s edit",
                stack,
            )
            for dag_id in expected:
                dag = wait(
                    lambda d=dag_id: dag_or_none(stack, d), 90, f"{dag_id} after release {number}", stack
                )
                assert not dag["is_stale"]
            if number >= 8:
                wait(
                    lambda: (
                        dag_or_none(stack, "rel_doomed") is None
                        or dag_or_none(stack, "rel_doomed")["is_stale"]
                    ),
                    120,
                    "rel_doomed to go",
                    stack,
                )
            errors = stack.api("GET", "/api/v2/importErrors")
            assert errors["total_entries"] == 0, errors
    finally:
        watcher.halt.set()
        watcher.join()
    assert watcher.violations == []
    assert watcher.samples > 50
    source = stack.api("GET", f"/api/v2/dagSources/{dag_or_none(stack, 'rel_keep')['dag_id']}")
    assert "words_v2" in source["content"]


def test_publish_to_first_success_latency(stack, tmp_path):
    """Publish a new DAG, time its first task's success, and where the time goes."""
    folder = tmp_path / "dags"
    files = {}
    rows = []
    for attempt in range(5):
        dag_id = f"latency_{attempt}"
        files[f"{dag_id}.py"] = dags.once_dag(dag_id)
        dags.write(folder, files)
        live_before = _live_release(stack)
        started = time.time()
        stack.publish(folder)
        published = time.time()
        swapped = wait(
            lambda b=live_before: _live_release(stack) != b and time.time(),
            60,
            "the sidecar's swap",
            stack,
            step=0.05,
        )
        wait(lambda d=dag_id: _succeeded(stack, d), 180, f"{dag_id} to succeed", stack, step=0.25)
        rows.append(_milestones(stack, dag_id, started, published, swapped))
    print("\npublish -> first task success, seconds from the start of `s3sync publish`")
    columns = ("published", "swapped", "parsed", "queued", "started", "success")
    print(f"{'dag':<10}" + "".join(f"{name:>10}" for name in columns))
    for dag_id, marks in rows:
        print(f"{dag_id:<10}" + "".join(f"{mark:>10.1f}" for mark in marks))
    totals = [marks[-1] for _, marks in rows]
    print(f"median {statistics.median(totals):.1f} s")
    assert all(total < 120 for total in totals), totals


def _live_release(stack) -> str | None:
    try:
        return os.readlink(stack.root / "current")
    except FileNotFoundError:
        return None


def _succeeded(stack, dag_id: str) -> bool:
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM task_instance WHERE dag_id = %s AND state = 'success'", (dag_id,))
        return cur.fetchone()[0] > 0


def _milestones(stack, dag_id: str, started: float, published: float, swapped: float):
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT min(created_at) FROM dag_version WHERE dag_id = %s", (dag_id,))
        parsed = cur.fetchone()[0].timestamp()
        cur.execute(
            "SELECT queued_dttm, start_date, end_date FROM task_instance WHERE dag_id = %s", (dag_id,)
        )
        queued, began, ended = (t.timestamp() for t in cur.fetchone())
    return dag_id, [t - started for t in (published, swapped, parsed, queued, began, ended)]
