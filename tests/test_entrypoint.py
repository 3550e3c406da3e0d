"""The image's entrypoint, without Docker: URLs from parts, checks, the DB wait, the worker's stop."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from entrypoint import ConfigError, StartupError
from entrypoint.connections import database_url, settings_from_parts
from entrypoint.database import connect_kwargs, first_line, wait_for_database
from entrypoint.required import pad_fernet_keys
from entrypoint.values import boolean, seconds
from entrypoint.worker import run_worker
from tests.e2e.stack import free_port

REPO = Path(__file__).resolve().parent.parent
TRICKY = "p@ss:w/rd%?#&=+$ ~'\""
DB = {"AIRFLOW_DB_HOST": "db.internal", "AIRFLOW_DB_USER": "airflow", "AIRFLOW_DB_PASSWORD": TRICKY}


def test_database_url_escapes_every_part_and_defaults_to_tls():
    url = database_url(DB, local_mode=False)
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg2" and parts.hostname == "db.internal" and parts.port == 5432
    assert unquote(parts.password) == TRICKY and unquote(parts.username) == "airflow"
    assert parts.path == "/airflow" and parts.query == "sslmode=require"
    assert connect_kwargs(url)["password"] == TRICKY


def test_local_mode_drops_the_tls_default_and_allows_no_password():
    url = database_url({"AIRFLOW_DB_HOST": "postgres", "AIRFLOW_DB_USER": "airflow"}, local_mode=True)
    assert url == "postgresql+psycopg2://airflow:@postgres:5432/airflow"


def test_result_backend_follows_the_database_and_an_explicit_one_wins():
    settings = settings_from_parts(DB, local_mode=False)
    assert (
        settings["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    explicit = settings_from_parts({**DB, "AIRFLOW__CELERY__RESULT_BACKEND": "redis://x"}, local_mode=False)
    assert "AIRFLOW__CELERY__RESULT_BACKEND" not in explicit


def test_rds_managed_secret_fills_user_and_password():
    env = {"AIRFLOW_DB_HOST": "db", "AIRFLOW_DB_SECRET": '{"username": "master", "password": "s3cr3t"}'}
    kwargs = connect_kwargs(database_url(env, local_mode=False))
    assert (kwargs["user"], kwargs["password"], kwargs["host"]) == ("master", "s3cr3t", "db")


def test_rotation_style_secret_carries_host_port_and_name():
    secret = '{"username": "u", "password": "p", "host": "h.rds", "port": 6432, "dbname": "af"}'
    kwargs = connect_kwargs(database_url({"AIRFLOW_DB_SECRET": secret}, local_mode=False))
    assert (kwargs["host"], kwargs["port"], kwargs["dbname"]) == ("h.rds", 6432, "af")


def test_broker_url_is_rediss_with_escaped_auth_token():
    env = {
        "AIRFLOW_REDIS_HOST": "cache.internal",
        "AIRFLOW_REDIS_PASSWORD": "tok/en@1",
        "AIRFLOW_REDIS_DB": "2",
    }
    url = settings_from_parts(env, local_mode=False)["AIRFLOW__CELERY__BROKER_URL"]
    assert url == "rediss://:tok%2Fen%401@cache.internal:6379/2?ssl_cert_reqs=required"
    plain = settings_from_parts({"AIRFLOW_REDIS_HOST": "redis"}, local_mode=True)[
        "AIRFLOW__CELERY__BROKER_URL"
    ]
    assert plain == "redis://redis:6379/0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**DB, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://x"}, "set one"),
        ({"AIRFLOW_DB_USER": "a", "AIRFLOW_DB_PASSWORD": "b"}, "AIRFLOW_DB_HOST is not set"),
        ({"AIRFLOW_DB_HOST": "h", "AIRFLOW_DB_PASSWORD": "b"}, "AIRFLOW_DB_USER is not set"),
        ({"AIRFLOW_DB_HOST": "h", "AIRFLOW_DB_USER": "a"}, "AIRFLOW_DB_PASSWORD is not set"),
        ({**DB, "AIRFLOW_DB_PORT": "54x"}, "AIRFLOW_DB_PORT must be a port number"),
        ({**DB, "AIRFLOW_DB_SSLMODE": "maybe"}, "AIRFLOW_DB_SSLMODE must be one of"),
        ({**DB, "AIRFLOW_DB_SECRET": '{"password": '}, "AIRFLOW_DB_SECRET is not valid JSON"),
        ({**DB, "AIRFLOW_DB_SECRET": '["a"]'}, "must be a JSON object"),
        ({**DB, "AIRFLOW_DB_SECRET": '{"password": "other"}'}, "AIRFLOW_DB_PASSWORD and AIRFLOW_DB_SECRET's"),
        ({"AIRFLOW_REDIS_PASSWORD": "x"}, "AIRFLOW_REDIS_HOST is not"),
        ({"AIRFLOW_REDIS_HOST": "r", "AIRFLOW__CELERY__BROKER_URL": "redis://x"}, "set one"),
        (
            {"AIRFLOW_REDIS_HOST": "r", "AIRFLOW_REDIS_TLS": "perhaps"},
            "AIRFLOW_REDIS_TLS must be true or false",
        ),
        ({"AIRFLOW_REDIS_HOST": "r", "AIRFLOW_REDIS_DB": "-1"}, "AIRFLOW_REDIS_DB must be a number"),
        ({"AIRFLOW_REDIS_HOST": "r", "AIRFLOW_REDIS_USER": "u"}, "AIRFLOW_REDIS_PASSWORD is not"),
    ],
)
def test_bad_parts_are_one_clear_error_that_never_echoes_a_secret(env, message):
    with pytest.raises(ConfigError, match=message) as caught:
        settings_from_parts(env, local_mode=False)
    assert TRICKY not in str(caught.value) and "other" not in str(caught.value).replace("AIRFLOW", "")
    assert "\n" not in str(caught.value)


def test_values():
    assert boolean({"X": "Yes"}, "X", default=False) is True
    assert boolean({}, "X", default=True) is True
    assert seconds({"T": "2.5"}, "T", 60) == 2.5 and seconds({}, "T", 60) == 60
    for bad in ("0", "-3", "soon"):
        with pytest.raises(ConfigError, match="T must be seconds > 0"):
            seconds({"T": bad}, "T", 60)


def test_libpq_preamble_is_dropped():
    error = Exception(
        'connection to server at "10.0.0.5", port 5432 failed: FATAL:  password authentication\nx'
    )
    assert first_line(error) == "FATAL:  password authentication"


def test_unreachable_database_is_waited_for_up_to_the_bound():
    said = []
    started = time.monotonic()
    url = f"postgresql+psycopg2://u:p@127.0.0.1:{free_port()}/db?sslmode=disable"
    with pytest.raises(StartupError, match=r"unreachable for 2s \(AIRFLOW_DB_WAIT_TIMEOUT\): .*refused"):
        wait_for_database(url, timeout=2, say=said.append)
    assert 2 <= time.monotonic() - started < 6
    assert len(said) == 1 and said[0].startswith("waiting up to 2s")


def test_a_missing_database_is_reported_at_once():
    url = "postgresql+psycopg2://postgres:x@127.0.0.1:5432/no_such_db_for_entrypoint_tests?sslmode=disable"
    started = time.monotonic()
    with pytest.raises(StartupError, match='no_such_db_for_entrypoint_tests" does not exist'):
        wait_for_database(url, timeout=30)
    assert time.monotonic() - started < 5


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    seconds = float(sys.argv[1])
    def stop(signum, frame):
        print(f"got {signal.Signals(signum).name}", flush=True)
        if signum == signal.SIGTERM:
            time.sleep(seconds)  # a warm shutdown: finish the running task
        sys.exit(0 if signum == signal.SIGTERM else 3)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGQUIT, stop)
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
    """
)


def supervise(tmp_path, task_seconds: float, bound: float) -> tuple[int, float, str]:
    """run_worker over a stand-in worker in a child process; SIGTERM it, return (code, seconds, output)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    runner = (
        "import sys; from entrypoint.worker import run_worker; "
        f"sys.exit(run_worker([sys.executable, {str(script)!r}, '{task_seconds}'], {bound}))"
    )
    process = subprocess.Popen([sys.executable, "-c", runner], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    return process.returncode, time.monotonic() - started, output


def test_worker_gets_sigterm_and_its_task_finishes_inside_the_bound(tmp_path):
    code, elapsed, output = supervise(tmp_path, task_seconds=2, bound=10)
    assert code == 0 and "got SIGTERM" in output and "cold shutdown" not in output
    assert 2 <= elapsed < 5


def test_worker_past_the_bound_gets_a_cold_shutdown(tmp_path):
    code, elapsed, output = supervise(tmp_path, task_seconds=30, bound=1.5)
    assert "got SIGTERM" in output and "cold shutdown (SIGQUIT)" in output
    assert "got SIGQUIT" in output and code == 3  # the stand-in's cold shutdown
    assert 1.5 <= elapsed < 5


def test_runtime_pip_installs_are_refused_before_anything_starts(tmp_path):
    env = {**os.environ, "_PIP_ADDITIONAL_REQUIREMENTS": "pandas==2.2.3", "AIRFLOW_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import entrypoint.cli as c; raise SystemExit(c.main())", "scheduler"],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "airflow-entrypoint: configuration error: _PIP_ADDITIONAL_REQUIREMENTS is not supported: "
        "packages are installed when the image is built "
        "(add them to requirements/airflow.in, run scripts/lock, rebuild)"
    ]


def test_run_worker_returns_the_childs_exit_code():
    assert run_worker([sys.executable, "-c", "raise SystemExit(7)"], 5) == 7


def test_healthcheck_auto_reads_the_role_file(tmp_path):
    role_file = tmp_path / "role"
    env = {**os.environ, "AIRFLOW_ROLE_FILE": str(role_file)}
    probe = [sys.executable, "-m", "healthchecks", "auto"]
    missing = subprocess.run(probe, env=env, capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2 and "no role file" in missing.stdout
    role_file.write_text("")
    one_off = subprocess.run(probe, env=env, capture_output=True, text=True, cwd=REPO)
    assert one_off.returncode == 0 and "nothing to probe" in one_off.stdout
    role_file.write_text("api-server")
    env["AIRFLOW__API__PORT"] = str(free_port())
    api = subprocess.run([*probe, "--timeout", "1"], env=env, capture_output=True, text=True, cwd=REPO)
    assert api.returncode == 1 and "api" in api.stdout.lower()


@pytest.mark.parametrize(
    ("lock", "inputs"),
    [
        ("images/airflow/requirements.lock", ["pyproject.toml", "requirements/airflow.in"]),
        ("images/s3sync/requirements.lock", ["pyproject.toml"]),
        ("images/idp-mock/requirements.lock", ["requirements/idp-mock.in"]),
    ],
)
def test_lock_files_are_in_step_with_their_inputs(lock, inputs):
    first = (REPO / lock).read_text().splitlines()[0]
    digest = hashlib.sha256(b"".join((REPO / path).read_bytes() for path in inputs)).hexdigest()
    assert first == f"# inputs-sha256: {digest}", f"{lock} is stale: run scripts/lock"


def test_both_images_lock_the_same_versions_of_what_they_share():
    def pins(path):
        lines = (REPO / path).read_text().splitlines()
        return dict(line.split(" ")[0].split("==") for line in lines if "==" in line and line[0].isalnum())

    airflow, s3sync = pins("images/airflow/requirements.lock"), pins("images/s3sync/requirements.lock")
    assert s3sync and all(airflow[name] == version for name, version in s3sync.items())


def test_probes_build_the_urls_from_the_same_parts(tmp_path):
    """ECS runs a health check with the container's environment: the parts, not the URLs."""
    alive = tmp_path / "alive"
    alive.touch()
    env = {
        "PATH": os.environ["PATH"],
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW_WORKER_LIVENESS_FILE": str(alive),
        "AIRFLOW_REDIS_HOST": "127.0.0.1",
        "AIRFLOW_REDIS_TLS": "false",
    }
    probe = [sys.executable, "-m", "healthchecks", "worker"]
    result = subprocess.run(probe, env=env, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "broker answers" in result.stdout, result.stdout
    env["AIRFLOW_REDIS_PORT"] = "nope"
    result = subprocess.run(probe, env=env, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "AIRFLOW_REDIS_PORT must be a port number" in result.stdout


def test_an_unpadded_generated_fernet_key_gets_its_padding_and_fernet_accepts_it():
    from cryptography.fernet import Fernet

    generated = "Ab3" * 14 + "x"  # 43 characters, as infra/'s GenerateSecretString makes it
    padded_elsewhere = Fernet.generate_key().decode()
    env = {"AIRFLOW__CORE__FERNET_KEY": f"{generated},{padded_elsewhere}"}
    pad_fernet_keys(env)
    keys = env["AIRFLOW__CORE__FERNET_KEY"].split(",")
    assert keys == [f"{generated}=", padded_elsewhere]
    token = Fernet(keys[0].encode()).encrypt(b"connection password")
    assert Fernet(keys[0].encode()).decrypt(token) == b"connection password"
    with pytest.raises(ValueError):
        Fernet(generated.encode())  # why the padding is added
