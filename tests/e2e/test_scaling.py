"""The workers' backlog metric against real PostgreSQL, Redis and Celery workers: a burst of
100 tasks takes it up, and it comes back to 0 as they finish. And a busy worker keeps its
ECS task protected from scale-in (against the agent's endpoint on loopback)."""

import json
import math
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from taskdefs.cli import main
from tests.e2e import dags
from tests.e2e.stack import BIN
from tests.e2e.test_airflow import dag_or_none, finished, run_state, wait
from tests.support import emf
from tests.support.autoscaling import at_utc, from_rendered
from tests.support.ecsagent import FakeAgent
from tests.support.trees import wait_for

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ecs" / "settings.example.toml"
TASKS = 100
CONCURRENCY = 16  # what the metric divides by, as a worker's [celery] worker_concurrency would be
BURST = f"""{dags.HEADER}import time

with DAG("e2e_burst", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         max_active_tasks={TASKS}):

    @task
    def nap(i):
        time.sleep(0.2)

    nap.expand(i=list(range({TASKS})))
"""


def backlog_series(path) -> tuple[list[dict], list[dict]]:
    """(backlog documents, broker documents) printed so far, each checked as EMF."""
    documents = [json.loads(line) for line in path.read_text().splitlines() if '"_aws"' in line]
    for document in documents:
        emf.check(document)
    return [d for d in documents if "Backlog" in d], [d for d in documents if "BrokerQueued" in d]


def test_the_backlog_metric_follows_a_burst_up_and_back_to_zero(stack, tmp_path):
    stack.publish(dags.write(tmp_path / "dags", {"burst.py": BURST}))
    wait(lambda: dag_or_none(stack, "e2e_burst"), 120, "e2e_burst in the REST API", stack)
    stack.api("PATCH", "/api/v2/dags/e2e_burst", {"is_paused": False})
    # room for the whole burst at once (Airflow's default parallelism is 32), and a second worker
    stack.stop_process("scheduler")
    stack.start_with_env("scheduler", {"AIRFLOW__CORE__PARALLELISM": str(2 * TASKS)})
    second_worker = ["celery", "worker", "--concurrency", "8", "--celery-hostname", "burst@%h"]
    stack.start_extra("burst-worker", second_worker)
    output = tmp_path / "metrics.jsonl"
    command = [str(BIN / "scaling-metrics"), "--interval", "1", "--deployment", "e2e"]
    command += ["--concurrency", str(CONCURRENCY)]
    with open(output, "w") as out:
        metrics = subprocess.Popen(command, env=stack.process_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait(lambda: backlog_series(output)[0], 30, "the first reading", stack, step=0.2)
        run_id = stack.api("POST", "/api/v2/dags/e2e_burst/dagRuns", {"logical_date": None})["dag_run_id"]
        state = finished(stack, "e2e_burst", run_id, 600, step=1)
        assert state == "success", stack.log_tail("celery-worker")
        back_to_zero = lambda: backlog_series(output)[0][-1]["Backlog"] == 0  # noqa: E731
        wait(back_to_zero, 30, "the metric back at 0", stack, step=0.2)
        time.sleep(2.5)  # and it stays there
    finally:
        metrics.terminate()
        assert metrics.wait(30) == 0, output.read_text()[-2000:]
        stack.stop_process("burst-worker")
        stack.stop_process("scheduler")
        stack.start_with_env("scheduler", {})
    series, broker = backlog_series(output)
    peak = max(series, key=lambda d: d["Backlog"])
    oldest = max(d["OldestQueuedAge"] for d in series)
    print(
        f"readings={len(series)} peak_backlog={peak['Backlog']} peak_desired={peak['DesiredWorkers']} "
        f"peak_queued={max(d['Queued'] for d in series)} oldest_queued={oldest:.1f}s "
        f"peak_broker={max(d['BrokerQueued'] for d in broker)}"
    )
    assert series[0]["Backlog"] == 0 and series[-1]["Backlog"] == 0 and series[-1]["DesiredWorkers"] == 0
    assert peak["Backlog"] >= 0.9 * TASKS  # the burst shows up whole, not trickling in
    assert peak["DesiredWorkers"] == math.ceil(peak["Backlog"] / CONCURRENCY)
    assert all(d["Backlog"] == d["Queued"] + d["Running"] for d in series)
    assert oldest > 0
    assert {d["Queue"] for d in broker} == {"default"} and max(d["BrokerQueued"] for d in broker) > 0
    stopped_at = next(i for i, d in enumerate(series) if i > series.index(peak) and d["Backlog"] == 0)
    assert all(d["Backlog"] == 0 for d in series[stopped_at:])

    # The same series through the rendered example policies, replayed minute by minute on a
    # weekday morning (away from the off/on-hours schedules).
    out = tmp_path / "rendered"
    assert main(["render", "--settings", str(EXAMPLE), "--out", str(out)]) == 0
    shift = at_utc("2026-11-24T10:00:00") - moment(series[0]).replace(second=0, microsecond=0)
    replay = [(moment(d) + shift, d["DesiredWorkers"]) for d in series]
    # then idle, as the loop goes on printing 0 every interval (15 s in the example)
    replay += [(replay[-1][0] + timedelta(seconds=15 * i), 0) for i in range(1, 121)]
    start = replay[0][0].replace(second=0, microsecond=0)
    timeline = from_rendered(out).run(replay, start, start + timedelta(minutes=30))
    first_work = next(at for at, value in replay if value > 0)
    first_worker = next(at for at, count in timeline if count > 0)
    assert (first_worker - first_work).total_seconds() <= 60
    assert max(count for _, count in timeline) == peak["DesiredWorkers"]
    last_work = max(at for at, value in replay if value > 0)
    asleep = next(at for at, count in timeline if at > last_work and count == 0)
    assert 15 <= (asleep - last_work).total_seconds() / 60 <= 16  # the example's idle_minutes
    print(f"replay: first worker {(first_worker - first_work).total_seconds():.0f}s after the first task")


def moment(document: dict) -> datetime:
    return datetime.fromtimestamp(document["_aws"]["Timestamp"] / 1000, UTC)


NAP = f"""{dags.HEADER}import time

with DAG("e2e_nap", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

    @task
    def nap():
        time.sleep(12)

    nap()
"""


def test_a_busy_worker_protects_its_task_from_scale_in_and_lets_go_when_idle(stack, tmp_path):
    agent = FakeAgent()
    stack.stop_process("celery-worker")
    stack.start_with_env("celery-worker", {"ECS_AGENT_URI": agent.uri})
    try:
        stack.publish(dags.write(tmp_path / "dags", {"nap.py": NAP}))
        wait(lambda: dag_or_none(stack, "e2e_nap"), 120, "e2e_nap in the REST API", stack)
        stack.api("PATCH", "/api/v2/dags/e2e_nap", {"is_paused": False})
        assert agent.states() == []  # idle: nothing to protect
        run_id = stack.api("POST", "/api/v2/dags/e2e_nap/dagRuns", {"logical_date": None})["dag_run_id"]
        wait(lambda: agent.states() == [True], 60, "protection while the task runs", stack)
        assert run_state(stack, "e2e_nap", run_id) == "running"
        state = finished(stack, "e2e_nap", run_id, 120)
        assert state == "success", stack.log_tail("celery-worker")
        wait_for(lambda: agent.states() == [True, False], 30, step=0.5, what="protection dropped when idle")
        assert agent.requests[0] == {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
    finally:
        stack.stop_process("celery-worker")
        stack.start_with_env("celery-worker", {})
        agent.close()
