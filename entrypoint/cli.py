"""airflow-entrypoint ROLE [ARGS...]

Roles (the container's command):
  api-server | scheduler | dag-processor | triggerer | worker
                    wait for the database, then run that Airflow component
  db-migrate        wait for the database, migrate it, create the admin user if
                    AIRFLOW_ADMIN_USERNAME/_PASSWORD are set (FAB auth manager), exit
  any other command (airflow ..., bash, python, id, ...)
                    run as given (after the same URL building, without the checks)

Before a role starts: settings from $AIRFLOW_HOME/airflow.env fill what the environment
lacks; AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, AIRFLOW__CELERY__BROKER_URL and
AIRFLOW__CELERY__RESULT_BACKEND are built from AIRFLOW_DB_* / AIRFLOW_REDIS_* parts
(entrypoint/connections.py); the JWT secret and fernet key must be set unless
AIRFLOW_LOCAL_MODE=true; [core] execution_api_server_url must be an http(s) URL;
_PIP_ADDITIONAL_REQUIREMENTS is refused (packages come with the image, never at start).

Environment:
  AIRFLOW_LOCAL_MODE            true: allow missing shared secrets, no TLS defaults (default false)
  AIRFLOW_DB_WAIT_TIMEOUT       seconds to wait for the database (default 60)
  AIRFLOW_WORKER_STOP_TIMEOUT   seconds a stopping worker's tasks get to finish (default 100)
  AIRFLOW_ROLE_FILE             where the role is written for `healthcheck auto` (default /tmp/airflow-role)

Exit codes: 2 bad configuration, 1 the database refused or never answered; otherwise the role's.
"""

import os
import shutil
import sys
from pathlib import Path

from entrypoint import ConfigError, StartupError
from entrypoint.connections import SQL_ALCHEMY_CONN, apply_settings_from_parts
from entrypoint.database import wait_for_database
from entrypoint.envfile import read_env_file
from entrypoint.required import (
    check_execution_api_url,
    check_no_runtime_packages,
    check_shared_secrets,
    pad_fernet_keys,
)
from entrypoint.roles import LONG_RUNNING, ROLES, db_migrate
from entrypoint.values import local_mode, seconds
from entrypoint.worker import DEFAULT_STOP_TIMEOUT, run_worker
from healthchecks.airflow_config import setting

DEFAULT_ROLE_FILE = "/tmp/airflow-role"
DEFAULT_DB_WAIT = 60.0


def say(line: str) -> None:
    print(f"airflow-entrypoint: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("help", "-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    role, extra = args[0], args[1:]
    try:
        if role not in ROLES and not shutil.which(role):
            raise ConfigError(f"{role!r} is neither a role ({', '.join(ROLES)}) nor a command")
        check_no_runtime_packages(os.environ)
        prepare_environment()
        if role not in ROLES:
            write_role_file("")
            os.execvp(role, args)
        check_shared_secrets(local_mode(os.environ))
        if role != "db-migrate":
            check_execution_api_url()
        wait_timeout = seconds(os.environ, "AIRFLOW_DB_WAIT_TIMEOUT", DEFAULT_DB_WAIT)
        worker_stop = seconds(os.environ, "AIRFLOW_WORKER_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT)
        wait_for_database(database_setting(), wait_timeout, say=say)
        write_role_file(role)
        if role == "db-migrate":
            return db_migrate(extra, say=say)
        command = [*LONG_RUNNING[role], *extra]
        if role == "worker":
            return run_worker(command, worker_stop, say=say)
        os.execvp(command[0], command)
    except ConfigError as exc:
        say(f"configuration error: {exc}")
        return 2
    except StartupError as exc:
        say(str(exc))
        return 1


def prepare_environment() -> None:
    """airflow.env defaults, then the URLs built from parts, into this process's environment."""
    env_file = Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow")) / "airflow.env"
    if env_file.exists():
        for key, value in read_env_file(env_file).items():
            os.environ.setdefault(key, value)
    apply_settings_from_parts(os.environ)
    pad_fernet_keys(os.environ)


def database_setting() -> str:
    url = setting("database", "sql_alchemy_conn") or ""
    if not url or "set-AIRFLOW__" in url:  # the baked-in placeholder
        raise ConfigError(
            f"no metadata database configured: set AIRFLOW_DB_HOST/_USER/_PASSWORD (or AIRFLOW_DB_SECRET) "
            f"or {SQL_ALCHEMY_CONN}"
        )
    return url


def write_role_file(role: str) -> None:
    """What `healthcheck auto` (the image's HEALTHCHECK) should probe; empty: nothing to probe."""
    path = Path(os.environ.get("AIRFLOW_ROLE_FILE", DEFAULT_ROLE_FILE))
    try:
        path.write_text(role)
    except OSError as exc:
        say(f"cannot write {path} ({exc.strerror}); the image's HEALTHCHECK will report unhealthy")
