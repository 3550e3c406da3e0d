"""The workers' backlog metrics: arithmetic, EMF validity, and outages that never stop the loop."""

import json
import socket
import subprocess
import sys

import pytest

from healthchecks.heartbeat import connect_args
from s3sync import logs
from scaling.backlog import Backlog, broker_keys, desired_workers
from scaling.loop import NAMESPACE, LoopSettings, MetricsLoop, Source, broker_source, database_source
from tests.support import emf


@pytest.mark.parametrize(
    "backlog, concurrency, maximum, want",
    [
        (0, 16, None, 0),
        (1, 16, None, 1),
        (16, 16, None, 1),
        (17, 16, None, 2),
        (100, 8, None, 13),
        (100, 8, 10, 10),
    ],
)
def test_desired_workers_run_the_whole_backlog_at_once(backlog, concurrency, maximum, want):
    assert desired_workers(backlog, concurrency, maximum) == want


def test_every_priority_list_of_a_queue_is_counted():
    assert broker_keys("default") == ["default", "default\x06\x163", "default\x06\x166", "default\x06\x169"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once it is closed


def fixed(name: str, value) -> Source:
    return Source(name, lambda: object(), lambda _connection: value)


def test_metrics_are_valid_emf_with_the_backlog_and_the_workers_it_needs(capsys):
    settings = LoopSettings("prod", concurrency=16, queues=("default", "etl"), max_workers=5)
    loop = MetricsLoop(
        settings, fixed("metadata DB", Backlog(90, 12, 31.5)), fixed("broker", {"default": 7, "etl": 0}), None
    )
    loop.once()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for document in documents:
        emf.check(document)
        assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    backlog, default, etl = documents
    assert {k: backlog[k] for k in ("Queued", "Running", "Backlog", "DesiredWorkers", "OldestQueuedAge")} == {
        "Queued": 90, "Running": 12, "Backlog": 102, "DesiredWorkers": 5, "OldestQueuedAge": 31.5,
    }  # fmt: skip
    assert backlog["Deployment"] == "prod" and backlog["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Deployment"]
    ]
    assert (default["Queue"], default["BrokerQueued"], etl["Queue"], etl["BrokerQueued"]) == (
        "default",
        7,
        "etl",
        0,
    )


def test_the_emf_check_refuses_what_cloudwatch_would_drop():
    directive = {"Namespace": "n", "Dimensions": [["D"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}
    good = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [directive]}, "D": "x", "M": 1}
    emf.check(good)
    for broken in (
        {**good, "D": 3},  # a dimension value that is not a string
        {**good, "M": "1"},  # a metric value that is not a number
        {k: v for k, v in good.items() if k != "M"},  # a metric with no value
    ):
        with pytest.raises(AssertionError):
            emf.check(broken)
    odd_unit = {**directive, "Metrics": [{"Name": "M", "Unit": "Things"}]}
    with pytest.raises(Exception, match="is not one of"):
        emf.check({**good, "_aws": {"Timestamp": 1, "CloudWatchMetrics": [odd_unit]}})


def test_an_unreachable_database_and_broker_cost_metrics_not_the_loop(capsys):
    database = database_source(connect_args(f"postgresql://u:p@127.0.0.1:{closed_port()}/airflow", 1))
    broker = broker_source(f"redis://127.0.0.1:{closed_port()}/0", ("default",), 1)
    logs.configure("info", json_output=True)
    loop = MetricsLoop(LoopSettings("prod", 16, ("default",)), database, broker, logs.get_logger())
    for _ in range(3):
        loop.once()  # never raises
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert not [r for r in records if "_aws" in r]  # no made-up zeros while blind
    errors = [r for r in records if r.get("level") == "error"]
    assert [r["event"] for r in errors] == [
        "metadata DB unreadable",
        "broker unreadable",
    ]  # once, not per poll
    assert all("\n" not in r["error"] for r in errors)
    assert "OperationalError" in errors[0]["error"] and "ConnectionError" in errors[1]["error"]


def test_a_source_that_comes_back_is_read_again(capsys):
    answers = iter([RuntimeError("connection refused"), Backlog(1, 0, 2.0)])

    def read(_connection):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    logs.configure("info", json_output=True)
    source = Source("metadata DB", lambda: object(), read)
    log = logs.get_logger()
    assert source.poll(log) is None and source.poll(log) == Backlog(1, 0, 2.0)
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events == ["metadata DB unreadable", "metadata DB readable again"]


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"AIRFLOW__CELERY__WORKER_CONCURRENCY": "many"},
            "[celery] worker_concurrency must be a positive integer",
        ),
        ({"SCALING_QUEUES": " , "}, "no queue named in"),
        ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": ""}, "[database] sql_alchemy_conn is not set"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(tmp_path, env, message):
    base = {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:p@127.0.0.1:1/airflow",
        "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:1/0",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "scaling.cli"], env={**base, **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
