"""taskdefs lint: the guardrail classes a one-value check used to miss. Each class is
parametrized over several of its members (one-place edits of the rendered example), each
of which must be one finding per place, naming the container and the field and never the
secret; harmless values of the same shape must pass."""

import json
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest

from taskdefs.cli import main
from tests.test_taskdefs_lint import EXAMPLE, airflow, container, lint_with

PASSWORD = "hunter2"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRETS = (PASSWORD, SECRET_ACCESS_KEY, ACCESS_KEY_ID)
S3_ENV_FILE = "arn:aws:s3:::example-airflow-dags/env/airflow.env"

dags_sync = container("dags-sync")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    assert main(["render", "--settings", str(EXAMPLE), "--out", str(out)]) == 0
    return out


def assert_found(lines: list[str], rule: str, *names: str) -> None:
    """Findings of `rule` alone, each naming everything in `names`, none showing a secret."""
    assert lines, "no finding"
    assert {line.split(": ")[1] for line in lines} == {rule}, lines
    for line in lines:
        assert all(name in line for name in names), line
        assert not any(secret in line for secret in SECRETS), line


def with_variable(name: str, value: str):
    return lambda task: airflow(task)["environment"].append({"name": name, "value": value})


def with_arguments(*words: str):
    """The airflow container's command with more arguments (its role stays the first word)."""
    return lambda task: airflow(task)["command"].extend(words)


def with_entry_point(*words: str):
    return lambda task: dags_sync(task).update(entryPoint=list(words))


# 1. Credentials in the values of plain environment variables.
SECRET_VALUES = {
    "an AWS secret access key": ("BACKUP_SIGNING", SECRET_ACCESS_KEY),
    "a secret access key inside a longer value": (
        "BOTO_EXTRA",
        f"region=eu-west-1 aws_secret_access_key={SECRET_ACCESS_KEY}",
    ),
    "a connection URI with a password": (
        "AIRFLOW_CONN_WAREHOUSE",
        f"postgresql://airflow:{PASSWORD}@db.example.com:5432/airflow",
    ),
    "a connection URI with a password and no login": (
        "AIRFLOW_CONN_CACHE",
        f"redis://:{PASSWORD}@cache.example.com:6379/0",
    ),
    "a connection URI with a password in its query": (
        "AIRFLOW_CONN_API",
        f"https://api.example.com/?password={PASSWORD}",
    ),
    "a connection URI with an encoded extra holding a key": (
        "AIRFLOW_CONN_AWS",
        "aws://?__extra__=" + quote(json.dumps({"aws_secret_access_key": PASSWORD})),
    ),
    "a connection JSON with a password": (
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps({"conn_type": "postgres", "host": "db", "login": "airflow", "password": PASSWORD}),
    ),
    "a connection JSON with a token in its extra": (
        "AIRFLOW_CONN_SLACK",
        json.dumps({"conn_type": "slack", "extra": {"token": f"xoxb-{PASSWORD}"}}),
    ),
    "a connection JSON with its extra as a JSON string": (
        "AIRFLOW_CONN_HTTP",
        json.dumps({"conn_type": "http", "extra": json.dumps({"api_key": PASSWORD})}),
    ),
}
# 2. Names that say password in another spelling, with a value.
SECRET_NAMES = ["DB_PASS", "SMTP_PASS", "PASS", "MYSQL_PWD", "LDAP_BIND_PWD", "AIRFLOW__SMTP__SMTP_PASS"]
SECRET_NAMES += ["GPG_PASSPHRASE", "REDIS_PASS_B64", "DBPASS", "ADMINPWD", "DB_PW", "db_pass"]
HARMLESS_VARIABLES = {
    "a connection URI without a password": ("AIRFLOW_CONN_WAREHOUSE", "postgresql://db.example.com/airflow"),
    "a connection URI with an empty password": ("AIRFLOW_CONN_WAREHOUSE", "postgresql://airflow:@db/airflow"),
    "a connection JSON without a password": (
        "AIRFLOW_CONN_HTTP",
        json.dumps({"conn_type": "http", "host": "api.example.com", "login": "airflow"}),
    ),
    "a git commit": ("GIT_COMMIT", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    "a digest": ("IMAGE_DIGEST", "sha256:" + "a" * 64),
    "a path": ("DAGS_PATH", "/opt/airflow/dags-root/releases/current"),
    "the shell's working directory": ("PWD", "/opt/airflow"),
    "the shell's previous directory": ("OLDPWD", "/"),
    "a name that holds PASS inside a word": ("BYPASS_PROXY", "true"),
    "a name that starts with PASS": ("PASSTHROUGH_HEADERS", "x-request-id"),
    "a name with PASS_THROUGH": ("PROXY_PASS_THROUGH", "true"),
    "a name that ends in a word ending in pass": ("SSL_BYPASS", "false"),
    "a name that holds TOKEN inside a word": ("TOKENIZERS_PARALLELISM", "false"),
    "a password name without a value": ("DB_PASS", ""),
    "a file that holds the password": ("DB_PASSWORD_FILE", "/run/secrets/db"),
}


@pytest.mark.parametrize(("name", "value"), SECRET_VALUES.values(), ids=list(SECRET_VALUES))
def test_credentials_in_environment_values_are_found(rendered, tmp_path, capsys, name, value):
    change = with_variable(name, value)
    _, lines = lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys)
    assert_found(lines, "secrets-in-environment", "container airflow", name)
    assert len(lines) == 1, lines


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_password_names_in_environment_are_found(rendered, tmp_path, capsys, name):
    change = with_variable(name, "s3cr3t-value")
    _, lines = lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys)
    assert_found(lines, "secrets-in-environment", "container airflow", name)
    assert not any("s3cr3t-value" in line for line in lines), lines


@pytest.mark.parametrize(("name", "value"), HARMLESS_VARIABLES.values(), ids=list(HARMLESS_VARIABLES))
def test_harmless_environment_passes(rendered, tmp_path, capsys, name, value):
    change = with_variable(name, value)
    assert lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys) == (0, [])


# 3. Keys and passwords on the command line (command, entryPoint, health check).
SECRET_COMMANDS = {
    "--password=": (with_arguments(f"--password={PASSWORD}"), "command[1]"),
    "--password VALUE": (with_arguments("--password", PASSWORD), "command[1]"),
    "--db-pass VALUE": (with_arguments("--db-pass", PASSWORD), "command[1]"),
    "-p VALUE": (with_arguments("-p", PASSWORD), "command[1]"),
    "a URL with a password": (
        with_arguments("--conn-uri", f"postgresql://airflow:{PASSWORD}@db/airflow"),
        "command[2]",
    ),
    "a connection JSON with a password": (
        with_arguments("--conn-json", json.dumps({"conn_type": "postgres", "password": PASSWORD})),
        "command[2]",
    ),
    "an AWS secret access key": (with_arguments("--aws-key", SECRET_ACCESS_KEY), "command[2]"),
    "an AWS access key id": (with_arguments("--aws-key-id", ACCESS_KEY_ID), "command[2]"),
    "a password variable set in a shell script": (
        with_entry_point("sh", "-c", f'PGPASSWORD={PASSWORD} exec s3sync "$@"', "--"),
        "entryPoint[2]",
    ),
    "mysql's -pPASSWORD in a shell script": (
        with_entry_point("sh", "-c", f"mysql -u root -p{PASSWORD} -e 'select 1'; exec s3sync \"$@\"", "--"),
        "entryPoint[2]",
    ),
    "redis-cli -a VALUE": (with_entry_point("redis-cli", "-a", PASSWORD, "ping"), "entryPoint[1]"),
    "curl -u USER:PASSWORD": (
        with_entry_point("curl", "-u", f"admin:{PASSWORD}", "https://example.com"),
        "entryPoint[1]",
    ),
    "--password VALUE in a shell script": (
        with_entry_point("sh", "-c", f"airflow users create --password '{PASSWORD}' && exec s3sync"),
        "entryPoint[2]",
    ),
    "a URL with a password in a health check": (
        lambda t: airflow(t)["healthCheck"].update(
            command=["CMD-SHELL", f"curl -fsS https://admin:{PASSWORD}@localhost:8080/api/v2/version"]
        ),
        "healthCheck.command[1]",
    ),
}
HARMLESS_COMMANDS = {
    "-p PORT": with_arguments("-p", "8080"),
    "--port PORT": with_arguments("--port", "8080"),
    "--password-file PATH": with_arguments("--password-file", "/run/secrets/db"),
    "--token-file=PATH": with_arguments("--token-file=/run/secrets/token"),
    "a URL without a password": with_arguments("--conn-uri", "postgresql://db.example.com/airflow"),
    "a log level": with_arguments("--log-level", "info"),
    "a setting of a token": with_arguments("--token-ttl", "3600"),
    "pytest's -p PLUGIN": with_entry_point("python", "-m", "pytest", "-p", "no:cacheprovider"),
    "curl -u USER": with_entry_point("curl", "-u", "admin", "https://example.com"),
    "mkdir -p in a shell script": with_entry_point("sh", "-c", 'mkdir -p /tmp/x && exec s3sync "$@"', "--"),
    "a password from the environment": with_entry_point(
        "sh", "-c", 'airflow users create --password "$ADMIN_PASSWORD" && exec s3sync'
    ),
    "a password option that takes no value": with_entry_point(
        "sh", "-c", "psql --no-password -d airflow -c 'select 1' && exec s3sync"
    ),
}


@pytest.mark.parametrize(("change", "field"), SECRET_COMMANDS.values(), ids=list(SECRET_COMMANDS))
def test_credentials_on_the_command_line_are_found(rendered, tmp_path, capsys, change, field):
    _, lines = lint_with(rendered, tmp_path, "scheduler.task-definition.json", change, capsys)
    assert_found(lines, "secrets-in-command", "container ", field)
    assert len(lines) == 1, lines


@pytest.mark.parametrize("change", HARMLESS_COMMANDS.values(), ids=list(HARMLESS_COMMANDS))
def test_harmless_command_lines_pass(rendered, tmp_path, capsys, change):
    assert lint_with(rendered, tmp_path, "scheduler.task-definition.json", change, capsys) == (0, [])


# 4. Environment files: plain files, read by whoever can read the bucket.
ENVIRONMENT_FILES = {
    "an S3 file on the airflow container": (airflow, [{"value": S3_ENV_FILE, "type": "s3"}]),
    "an S3 file on a sidecar": (dags_sync, [{"value": S3_ENV_FILE, "type": "s3"}]),
    "two files": (
        airflow,
        [{"value": S3_ENV_FILE, "type": "s3"}, {"value": S3_ENV_FILE + ".more", "type": "s3"}],
    ),
}


@pytest.mark.parametrize(("target", "files"), ENVIRONMENT_FILES.values(), ids=list(ENVIRONMENT_FILES))
def test_environment_files_are_found(rendered, tmp_path, capsys, target, files):
    change = lambda task: target(task).update(environmentFiles=files)  # noqa: E731
    _, lines = lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys)
    assert_found(lines, "no-environment-files", "container ", "environmentFiles")


def test_an_empty_environment_file_list_passes(rendered, tmp_path, capsys):
    change = lambda task: airflow(task).update(environmentFiles=[])  # noqa: E731
    assert lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys) == (0, [])


# 5. Root in other spellings: the uid part is 0 or root, however written.
ROOT_USERS = ["0", "00", "000:0", "0:0", "0:1000", "00:50000", "root", "root:root", "root:50000"]
ROOT_USERS += [" 0", "0 ", "\t0:0", "root ", " root:root", "0 :1000", "+0", ":0", "  ", "ROOT"]
NON_ROOT_USERS = ["50000:0", "50000", "1000:1000", "airflow", "airflow:root", "10", "0100:0", "rooted"]


@pytest.mark.parametrize("user", ROOT_USERS, ids=repr)
def test_root_in_any_spelling_is_found(rendered, tmp_path, capsys, user):
    change = lambda task: dags_sync(task).update(user=user)  # noqa: E731
    _, lines = lint_with(rendered, tmp_path, "scheduler.task-definition.json", change, capsys)
    assert_found(lines, "non-root", "container dags-sync", "user")
    assert len(lines) == 1, lines


@pytest.mark.parametrize("user", NON_ROOT_USERS)
def test_users_that_are_not_root_pass(rendered, tmp_path, capsys, user):
    change = lambda task: dags_sync(task).update(user=user)  # noqa: E731
    assert lint_with(rendered, tmp_path, "scheduler.task-definition.json", change, capsys) == (0, [])


# 6. Added Linux capabilities.
ADDED_CAPABILITIES = [["SYS_ADMIN"], ["NET_ADMIN"], ["SYS_PTRACE"], ["NET_RAW", "CHOWN"]]


@pytest.mark.parametrize("added", ADDED_CAPABILITIES, ids=",".join)
def test_added_capabilities_are_found(rendered, tmp_path, capsys, added):
    change = lambda task: airflow(task)["linuxParameters"].update(capabilities={"add": added})  # noqa: E731
    _, lines = lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys)
    assert_found(lines, "no-added-capabilities", "container airflow", "capabilities.add", *added)
    assert len(lines) == 1, lines


@pytest.mark.parametrize("capabilities", [{"drop": ["ALL"]}, {"add": [], "drop": ["NET_RAW"]}], ids=str)
def test_dropped_capabilities_pass(rendered, tmp_path, capsys, capabilities):
    change = lambda task: airflow(task)["linuxParameters"].update(capabilities=capabilities)  # noqa: E731
    assert lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys) == (0, [])


# 7. The host's process or IPC namespace.
HOST_NAMESPACES = {"pidMode": {"pidMode": "host"}, "ipcMode": {"ipcMode": "host"}}


@pytest.mark.parametrize("mode", HOST_NAMESPACES.values(), ids=list(HOST_NAMESPACES))
def test_host_namespaces_are_found(rendered, tmp_path, capsys, mode):
    change = lambda task: task.update(mode)  # noqa: E731
    _, lines = lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys)
    assert_found(lines, "no-host-namespaces", *mode)
    assert len(lines) == 1, lines


def test_a_task_pid_namespace_passes(rendered, tmp_path, capsys):
    change = lambda task: task.update(pidMode="task")  # noqa: E731
    assert lint_with(rendered, tmp_path, "worker.task-definition.json", change, capsys) == (0, [])


# 8. Tags that float: anything but a full version (three numbers) when there is no digest.
FLOATING_TAGS = ["stable", "main", "master", "edge", "nightly", "dev", "3", "3.1", "v3.1", "3.1-python3.12"]
FLOATING_TAGS += ["stable-alpine", "sha-abc1234"]
PINNED_REFERENCES = [":3.1.8", ":v1.2.3", ":2026.12.04-abc1234", ":3.1.8-1", "@sha256:" + "a" * 64]
PINNED_REFERENCES += [":V1.2.3", ":1.2.3-alpine", ":stable@sha256:" + "b" * 64]


def with_airflow_image(reference: str):
    return lambda task: airflow(task).update(image=airflow(task)["image"].rsplit(":", 1)[0] + reference)


@pytest.mark.parametrize("tag", FLOATING_TAGS)
def test_floating_tags_are_found(rendered, tmp_path, capsys, tag):
    change = with_airflow_image(f":{tag}")
    _, lines = lint_with(rendered, tmp_path, "scheduler.task-definition.json", change, capsys)
    assert_found(lines, "image-pinned", "container airflow", "image", f":{tag}")
    assert len(lines) == 1, lines


@pytest.mark.parametrize("reference", PINNED_REFERENCES)
def test_pinned_images_pass(rendered, tmp_path, capsys, reference):
    change = with_airflow_image(reference)
    assert lint_with(rendered, tmp_path, "scheduler.task-definition.json", change, capsys) == (0, [])


@pytest.mark.parametrize("tag", ["stable", "3.1"])
def test_settings_refuse_the_tags_lint_calls_floating(tmp_path, capsys, tag):
    settings = tomllib.loads(EXAMPLE.read_text())
    settings["images"]["s3sync"] = settings["images"]["s3sync"].rsplit(":", 1)[0] + f":{tag}"
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    assert main(["render", "--settings", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"images.s3sync: is tagged {tag!r}" in capsys.readouterr().err
