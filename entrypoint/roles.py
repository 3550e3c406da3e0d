"""What each role runs. The role is the container's command; its extra args go to Airflow."""

import os
import subprocess

from entrypoint import ConfigError, StartupError
from healthchecks.airflow_config import setting

LONG_RUNNING = {
    "api-server": ["airflow", "api-server"],
    "scheduler": ["airflow", "scheduler"],
    "dag-processor": ["airflow", "dag-processor"],
    "triggerer": ["airflow", "triggerer"],
    "worker": ["airflow", "celery", "worker"],
}
ONE_OFF = ("db-migrate",)
ROLES = (*LONG_RUNNING, *ONE_OFF)
FAB_AUTH_MANAGER = "FabAuthManager"


def admin_user(env) -> list[str] | None:
    """`airflow users create` for AIRFLOW_ADMIN_USERNAME/_PASSWORD; checked before migrating."""
    username = env.get("AIRFLOW_ADMIN_USERNAME")
    if not username:
        return None
    password = env.get("AIRFLOW_ADMIN_PASSWORD")
    if not password:
        raise ConfigError("AIRFLOW_ADMIN_USERNAME is set but AIRFLOW_ADMIN_PASSWORD is not")
    manager = setting("core", "auth_manager") or ""
    if not manager.endswith(FAB_AUTH_MANAGER):
        raise ConfigError(
            f"AIRFLOW_ADMIN_USERNAME is set but [core] auth_manager is {manager.rsplit('.', 1)[-1]!r}, "
            f"which keeps no users in the database; use {FAB_AUTH_MANAGER} or unset it"
        )
    return [
        "airflow", "users", "create", "--role", "Admin",
        "--username", username, "--password", password,
        "--email", env.get("AIRFLOW_ADMIN_EMAIL") or f"{username}@airflow.invalid",
        "--firstname", env.get("AIRFLOW_ADMIN_FIRSTNAME") or username,
        "--lastname", env.get("AIRFLOW_ADMIN_LASTNAME") or "admin",
    ]  # fmt: skip


def db_migrate(extra_args: list[str], say=print) -> int:
    """Migrate the metadata DB, then create the admin user if one is configured (idempotent)."""
    create_admin = admin_user(os.environ)
    _run(["airflow", "db", "migrate", *extra_args], "airflow db migrate")
    say("database migrated")
    if create_admin:
        # FAB prints "already exist in the db" and exits 0 for a user it has: safe to rerun.
        _run(create_admin, "creating the admin user")
        say(f"admin user {os.environ['AIRFLOW_ADMIN_USERNAME']!r} present")
    return 0


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command)
    if result.returncode != 0:
        raise StartupError(f"{what} failed with exit code {result.returncode}")
