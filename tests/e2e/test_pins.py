"""The Airflow pins hold: a break like celery 5.7 + celery provider 3.26 fails loudly here."""

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
PINS = Path(__file__).resolve().parents[2] / "requirements" / "airflow.in"
BIN = Path(sys.executable).parent


def pinned() -> dict[str, str]:
    found = {}
    for line in PINS.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s#]+)", line):
            found[match.group(1)] = match.group(3)
    return found


def test_installed_versions_match_the_pins():
    for name, wanted in pinned().items():
        assert version(name) == wanted, f"{name} {version(name)} installed, {wanted} pinned"


def test_dependencies_are_consistent():
    result = subprocess.run([str(BIN / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_celery_executor_and_its_cli_load(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    command = [str(BIN / "airflow"), "celery", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "worker" in output
    assert "failed to load" not in output.lower() and "ImportError" not in output
