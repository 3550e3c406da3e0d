"""A container with bad configuration exits non-zero, within its bound, with one clear line."""

import pytest

from tests.containers.docker import AIRFLOW_IMAGE, run
from tests.e2e.stack import free_port

pytestmark = pytest.mark.container

SHARED = {"AIRFLOW__CORE__FERNET_KEY": "x" * 43 + "=", "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-for-tests"}


def db_parts(port: int, password: str, user: str = "postgres", name: str = "postgres") -> dict[str, str]:
    return {
        "AIRFLOW_DB_HOST": "127.0.0.1",
        "AIRFLOW_DB_PORT": str(port),
        "AIRFLOW_DB_USER": user,
        "AIRFLOW_DB_PASSWORD": password,
        "AIRFLOW_DB_NAME": name,
        "AIRFLOW_DB_SSLMODE": "disable",
    }


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_wrong_password_is_refused_at_once(images, password_postgres):
    env = {**SHARED, **db_parts(password_postgres.port, "not-the-password"), "AIRFLOW_DB_WAIT_TIMEOUT": "60"}
    code, _out, err, seconds = run(AIRFLOW_IMAGE, "scheduler", env=env)
    assert code == 1
    line = one_line(err)
    assert "refused user 'postgres'" in line and "password authentication failed" in line, line
    assert seconds < 15  # no point waiting out the 60 s: the answer will not change
    assert "not-the-password" not in err


def test_unreachable_database_gives_up_at_the_bound(images):
    env = {**SHARED, **db_parts(free_port(), "pw"), "AIRFLOW_DB_WAIT_TIMEOUT": "6"}
    code, _out, err, seconds = run(AIRFLOW_IMAGE, "worker", env=env)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert "waiting up to 6s" in lines[0] and len(lines) == 2, err
    assert "unreachable for 6s (AIRFLOW_DB_WAIT_TIMEOUT)" in lines[1] and "refused" in lines[1], lines[1]
    assert 6 <= seconds < 20


@pytest.mark.parametrize("missing", ["AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"])
def test_missing_shared_secret_refuses_to_start(images, password_postgres, missing):
    env = {**SHARED, **db_parts(password_postgres.port, password_postgres.password)}
    del env[missing]
    code, _out, err, seconds = run(AIRFLOW_IMAGE, "api-server", env=env)
    assert code == 2
    line = one_line(err)
    assert missing in line and "not set" in line, line
    assert seconds < 15


def test_local_mode_allows_missing_secrets(images):
    env = {
        "AIRFLOW_LOCAL_MODE": "true",
        **db_parts(free_port(), "", name="x"),
        "AIRFLOW_DB_WAIT_TIMEOUT": "1",
    }
    code, _out, err, _ = run(AIRFLOW_IMAGE, "scheduler", env=env)
    assert code == 1 and "unreachable" in err, err  # got past the secrets check to the database


def test_no_database_configured(images):
    code, _out, err, _ = run(AIRFLOW_IMAGE, "scheduler", env=SHARED)
    assert code == 2 and "no metadata database configured" in one_line(err)


def test_password_with_url_special_characters_reaches_airflow(images, password_postgres):
    """The parts are URL-escaped: Airflow itself connects with a password full of @:/%?#&=+$ and spaces."""
    password = "p@ss:w/rd%25?#&=+$ ~'x"
    password_postgres.sql("DROP ROLE IF EXISTS escaper")
    password_postgres.sql(f"CREATE ROLE escaper LOGIN PASSWORD '{password.replace(chr(39), chr(39) * 2)}'")
    env = {**SHARED, **db_parts(password_postgres.port, password, user="escaper")}
    code, out, err, _ = run(AIRFLOW_IMAGE, "airflow", "db", "check", env=env)
    assert code == 0, err[-2000:]
    assert "Connection successful" in out + err
    env["AIRFLOW_DB_PASSWORD"] = password + "x"
    code, _out, err, _ = run(AIRFLOW_IMAGE, "airflow", "db", "check", env=env)
    assert code != 0 and "password authentication failed" in err


def test_rds_managed_json_secret(images, password_postgres):
    env = {**SHARED, **db_parts(password_postgres.port, "")}
    del env["AIRFLOW_DB_USER"], env["AIRFLOW_DB_PASSWORD"]
    env["AIRFLOW_DB_SECRET"] = f'{{"username": "postgres", "password": "{password_postgres.password}"}}'
    code, out, err, _ = run(AIRFLOW_IMAGE, "airflow", "db", "check", env=env)
    assert code == 0 and "Connection successful" in out + err, err[-2000:]
