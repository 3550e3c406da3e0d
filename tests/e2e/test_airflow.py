"""End to end on Airflow 3.1.8: DAGs published to S3 reach Airflow through s3sync and run on Celery."""

import statistics
import threading
import time
import urllib.error

import pytest

from tests.e2e import dags
from tests.e2e.stack import BUCKET

pytestmark = pytest.mark.e2e


def wait(predicate, timeout: float, what: str, stack, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_processes()
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def dag_or_none(stack, dag_id: str) -> dict | None:
    try:
        return stack.api("GET", f"/api/v2/dags/{dag_id}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def run_state(stack, dag_id: str, run_id: str) -> str:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]


def test_published_dag_runs_on_celery_reads_secrets_and_logs_to_s3(stack, tmp_path):
    stack.secretsmanager.create_secret(
        Name="airflow/connections/e2e_secret", SecretString="http://e2e:pw@secret-host.internal:8443"
    )
    stack.publish(dags.write(tmp_path / "dags", {"hello.py": dags.SECRET_READER}))
    dag = wait(lambda: dag_or_none(stack, "e2e_hello"), 120, "e2e_hello in the REST API", stack)
    assert dag["relative_fileloc"] == "hello.py" and dag["fileloc"].endswith("/current/hello.py")
    stack.api("PATCH", "/api/v2/dags/e2e_hello", {"is_paused": False})
    run_id = stack.api("POST", "/api/v2/dags/e2e_hello/dagRuns", {"logical_date": None})["dag_run_id"]
    state = wait(
        lambda: (
            run_state(stack, "e2e_hello", run_id) in ("success", "failed")
            and run_state(stack, "e2e_hello", run_id)
        ),
        180,
        "the run to finish",
        stack,
    )
    assert state == "success", stack.log_tail("celery-worker")

    objects = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/dag_id=e2e_hello/").get("Contents", [])
    assert objects, "no task log in S3"
    local = list((stack.home / "logs" / "dag_id=e2e_hello").rglob("*.log"))
    assert local == [], "remote logging should not leave local task logs"
    log = stack.api("GET", f"/api/v2/dags/e2e_hello/dagRuns/{run_id}/taskInstances/work/logs/1")
    text = "\n".join(str(line.get("event", "")) for line in log["content"])
    assert "connection host is secret-host.internal" in text
    assert "s3://" in text or any("s3" in str(line).lower() for line in log["content"])


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


def test_twenty_releases_keep_dags_stable(stack, tmp_path):
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
    folder = tmp_path / "dags"
    files = {}
    seconds = []
    for attempt in range(5):
        dag_id = f"latency_{attempt}"
        files[f"{dag_id}.py"] = dags.once_dag(dag_id)
        dags.write(folder, files)
        started = time.monotonic()
        stack.publish(folder)
        wait(lambda d=dag_id: _first_success(stack, d), 180, f"{dag_id} to succeed", stack, step=0.25)
        seconds.append(time.monotonic() - started)
    print(
        f"\npublish -> first task success (s): {', '.join(f'{s:.1f}' for s in seconds)}; "
        f"median {statistics.median(seconds):.1f}"
    )


def _first_success(stack, dag_id: str) -> bool:
    with stack.db() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM task_instance WHERE dag_id = %s AND state = 'success'", (dag_id,))
        return cur.fetchone()[0] > 0
