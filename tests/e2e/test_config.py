"""config/airflow/ is what Airflow reads, and every key yields to AIRFLOW__SECTION__KEY."""

import os
import shutil
import subprocess

import pytest

from tests.e2e.stack import BIN, REPO, read_env_file

pytestmark = pytest.mark.e2e


def config_value(home, section: str, key: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    environment |= {"AIRFLOW_HOME": str(home), **env}
    result = subprocess.run(
        [str(BIN / "airflow"), "config", "get-value", section, key],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_ecs_settings_are_read_and_env_vars_override_them(tmp_path):
    shutil.copy(REPO / "config/airflow/airflow.cfg", tmp_path / "airflow.cfg")
    assert config_value(tmp_path, "core", "executor") == "CeleryExecutor"
    assert config_value(tmp_path, "core", "dags_folder") == "/opt/airflow/dags-root/current"
    assert config_value(tmp_path, "scheduler", "enable_health_check") == "True"
    assert config_value(tmp_path, "logging", "remote_logging") == "True"
    assert config_value(tmp_path, "dag_processor", "refresh_interval") == "5"
    assert (
        config_value(tmp_path, "core", "executor", AIRFLOW__CORE__EXECUTOR="LocalExecutor") == "LocalExecutor"
    )


def test_env_file_names_the_logging_connection():
    env = read_env_file(REPO / "config/airflow/airflow.env")
    assert env["AIRFLOW_CONN_AWS_DEFAULT"].startswith("aws://")
