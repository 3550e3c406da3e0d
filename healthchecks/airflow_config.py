"""Airflow settings as Airflow resolves them, without importing Airflow.

Order: AIRFLOW__SECTION__KEY, then AIRFLOW__SECTION__KEY_CMD (run, stdout), then
$AIRFLOW_CONFIG or $AIRFLOW_HOME/airflow.cfg, then the default given.
"""

import os
from functools import cache

from healthchecks import Misconfigured


@cache
def _config_file():
    import configparser  # only when the environment does not have the setting

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    home = os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow"))
    parser.read(os.environ.get("AIRFLOW_CONFIG", os.path.join(home, "airflow.cfg")))
    return parser


def setting(section: str, key: str, default: str | None = None) -> str | None:
    name = f"AIRFLOW__{section.upper()}__{key.upper()}"
    if name in os.environ:
        return os.environ[name]
    if f"{name}_CMD" in os.environ:
        return _run(os.environ[f"{name}_CMD"], name)
    return _config_file().get(section, key, fallback=default)


def required(section: str, key: str) -> str:
    value = setting(section, key)
    if not value:
        raise Misconfigured(f"[{section}] {key} is not set (AIRFLOW__{section.upper()}__{key.upper()})")
    return value


def number(section: str, key: str, default: float) -> float:
    value = setting(section, key, str(default))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Misconfigured(f"[{section}] {key} is not a number: {value!r}") from None


def _run(command: str, name: str) -> str:
    import subprocess

    try:
        result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=5, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        raise Misconfigured(f"{name}_CMD failed: {exc}") from None
    return result.stdout.strip()
