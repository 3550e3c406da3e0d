"""Unit tier for the probes: settings resolution, URL parsing, thresholds, exit codes."""

import socket
import sys
import time

import pytest

from healthchecks import MISCONFIGURED, UNHEALTHY, Misconfigured, airflow_config
from healthchecks.cli import main, run
from healthchecks.heartbeat import connect_args, threshold


@pytest.fixture(autouse=True)
def airflow_home(tmp_path, monkeypatch):
    for key in [k for k in list(__import__("os").environ) if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    airflow_config._config_file.cache_clear()
    yield tmp_path
    airflow_config._config_file.cache_clear()


def test_settings_come_from_env_then_cmd_then_file(airflow_home, monkeypatch):
    (airflow_home / "airflow.cfg").write_text("[scheduler]\njob_heartbeat_sec = 7\n[api]\nport = 9090\n")
    assert airflow_config.setting("scheduler", "job_heartbeat_sec") == "7"
    monkeypatch.setenv("AIRFLOW__API__PORT_CMD", "echo 9191")
    assert airflow_config.setting("api", "port") == "9191"
    monkeypatch.setenv("AIRFLOW__API__PORT", "9292")
    assert airflow_config.setting("api", "port") == "9292"
    assert airflow_config.setting("core", "missing", "fallback") == "fallback"


def test_missing_and_malformed_settings_are_misconfigurations(monkeypatch):
    with pytest.raises(Misconfigured, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        airflow_config.required("database", "sql_alchemy_conn")
    monkeypatch.setenv("AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC", "often")
    with pytest.raises(Misconfigured, match="not a number"):
        airflow_config.number("triggerer", "job_heartbeat_sec", 5)


def test_sqlalchemy_urls_become_bounded_psycopg2_arguments():
    args = connect_args("postgresql+psycopg2://air%40flow:p%2Fw@db.internal:6543/meta?sslmode=require", 4)
    assert args["host"] == "db.internal" and args["port"] == 6543
    assert args["user"] == "air@flow" and args["password"] == "p/w" and args["dbname"] == "meta"
    assert args["sslmode"] == "require" and args["connect_timeout"] == 4
    assert args["options"] == "-c statement_timeout=4000"
    with pytest.raises(Misconfigured, match="only PostgreSQL"):
        connect_args("mysql://x@h/db", 4)


def test_thresholds_leave_real_margin_over_airflows_own():
    assert threshold(5) == 30  # Airflow itself: 5 x 2.1 = 10.5 s
    assert threshold(10) == 40
    assert threshold(1) == 30


def test_an_unset_database_exits_2_with_one_line(capsys):
    assert main(["dag-processor"]) == MISCONFIGURED
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("misconfigured: [database] sql_alchemy_conn is not set")


def test_a_probe_that_hangs_is_cut_off():
    def hangs(timeout):
        time.sleep(30)

    started = time.monotonic()
    verdict = run(hangs, 0.5)
    assert verdict.code == UNHEALTHY and "no answer within 0.5s" in verdict.line
    assert time.monotonic() - started < 3


def test_a_dead_scheduler_health_server_is_unhealthy(monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", str(port))
    assert main(["scheduler", "--timeout", "2"]) == UNHEALTHY
    assert f"GET http://127.0.0.1:{port}/health" in capsys.readouterr().out


def test_the_probe_modules_import_no_airflow():
    import subprocess

    code = (
        "import healthchecks.cli, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('airflow', 'celery', 'boto3', 'sqlalchemy', 'psycopg2', 'redis')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"  # even the drivers load only in the probe that needs them
