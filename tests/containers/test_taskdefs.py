"""The rendered task definitions, run the way ECS runs them, on our images.

Each container definition becomes `docker run` with what ECS would give it: its user,
read-only root, init process, tmpfs mounts, mount points, environment, and its `secrets`
read from Secrets Manager (moto's, on loopback). The order is the task's dependsOn: the
init sidecar must exit 0, then the airflow container starts and becomes healthy by its
own healthCheck, then the long-running sidecar, then scaling-metrics (the workers' backlog
as EMF lines, read from the same database and broker). db-migrate runs first, as a
deployment would. What only the test adds: the local S3 endpoint and credentials (no task role here),
no TLS to the machine's Postgres and Redis, a Redis DB and ports of its own, the local
image tags in place of the ECR ones.
"""

import json
import secrets
import time
import tomllib
from pathlib import Path

import pytest

from taskdefs.cli import main
from tests.containers.docker import AIRFLOW_IMAGE, LABEL, S3SYNC_IMAGE, docker, env_args, run, state
from tests.containers.stack import published_tree
from tests.e2e import dags
from tests.e2e.stack import BUCKET, REDIS_PORT, free_port
from tests.support import emf
from tests.support.trees import wait_for

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
LOCAL_IMAGES = {"airflow": AIRFLOW_IMAGE, "s3sync": S3SYNC_IMAGE}


def settings_for(stack, secret_arns: dict[str, str]) -> dict:
    settings = tomllib.loads(EXAMPLE.read_text().replace("eu-west-1", "us-east-1"))
    settings["dags"] = {"bucket": BUCKET, "prefix": "dags", "volume": "task", "sync_interval": 2}
    settings["logs"].update(bucket=BUCKET, prefix="logs")
    settings["database"] = {"host": "127.0.0.1", "port": 5432, "name": stack.database}
    settings["redis"] = {"host": "127.0.0.1", "port": REDIS_PORT}
    settings["api"] = {"url": stack.api_url}
    settings["secrets"] = secret_arns
    return settings


def store_secrets(stack) -> tuple[dict[str, str], dict[str, str]]:
    """The deployment's secrets in Secrets Manager: (settings key -> ARN, ARN -> value)."""
    values = {
        "database": json.dumps({"username": "postgres", "password": "trust-auth-ignores-it"}),
        "jwt_secret": stack.env["AIRFLOW__API_AUTH__JWT_SECRET"],
        "fernet_key": stack.env["AIRFLOW__CORE__FERNET_KEY"],
        "api_secret_key": stack.env["AIRFLOW__API__SECRET_KEY"],
    }
    prefix = f"ecs-{secrets.token_hex(3)}"
    arns = {
        key: stack.secretsmanager.create_secret(Name=f"{prefix}/{key}", SecretString=value)["ARN"]
        for key, value in values.items()
    }
    return arns, {arns[key]: values[key] for key in values}


def docker_run_args(
    container: dict, volumes: dict[str, Path], secret_values: dict[str, str], extra_env: dict
):
    """What ECS would give this container, as `docker run` options, image and command."""
    options = ["--user", container["user"]] if "user" in container else []
    if container.get("readonlyRootFilesystem"):
        options.append("--read-only")
    linux = container.get("linuxParameters", {})
    if linux.get("initProcessEnabled"):
        options.append("--init")
    for mount in linux.get("tmpfs", []):
        mount_options = ",".join([*mount.get("mountOptions", []), f"size={mount['size']}m"])
        options += ["--tmpfs", f"{mount['containerPath']}:{mount_options}"]
    for point in container.get("mountPoints", []):
        read_only = ":ro" if point.get("readOnly") else ""
        options += ["-v", f"{volumes[point['sourceVolume']]}:{point['containerPath']}{read_only}"]
    env = {variable["name"]: variable["value"] for variable in container.get("environment", [])}
    env |= {secret["name"]: secret_values[secret["valueFrom"]] for secret in container.get("secrets", [])}
    redis = "AIRFLOW_REDIS_HOST" in env
    env |= {key: value for key, value in extra_env.items() if redis or not key.startswith("AIRFLOW_REDIS_")}
    image = LOCAL_IMAGES[container["image"].rsplit("/", 1)[1].split(":")[0]]
    return [*options, *env_args(env)], image, container["command"]


def health_options(container: dict) -> list[str]:
    command = container["healthCheck"]["command"]
    assert command[0] == "CMD"
    # Checked every 2 s here (30 s on ECS) so the test waits less; same command and start period.
    return ["--health-cmd", " ".join(command[1:]), "--health-interval", "2s", "--health-retries", "3"]


def wait_healthy(name: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        current = state(name)
        assert current["Running"], docker("logs", name, check=False).stderr[-3000:]
        if current.get("Health", {}).get("Status") == "healthy":
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(
        f"{name} not healthy in {timeout:g}s: {docker('logs', name, check=False).stderr[-3000:]}"
    )


def test_the_scheduler_task_runs_as_ecs_runs_it(stack, tmp_path):
    arns, secret_values = store_secrets(stack)
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings_for(stack, arns)))
    out = tmp_path / "rendered"
    assert main(["render", "--settings", str(settings_file), "--out", str(out)]) == 0

    dags.write(tmp_path / "dags", {"hello.py": dags.HEADER})
    stack.publish(tmp_path / "dags")
    volumes = {"dags": tmp_path / "dags-root"}
    volumes["dags"].mkdir()
    volumes["dags"].chmod(0o777)  # a task-local volume starts as the image's directory, owned by 50000
    aws = {key: stack.env[key] for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    airflow_env = {
        **aws,
        "AIRFLOW_DB_SSLMODE": "disable",
        "AIRFLOW_REDIS_TLS": "false",
        "AIRFLOW_REDIS_DB": stack.env["AIRFLOW_REDIS_DB"],
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
    }

    migrate = json.loads((out / "db-migrate.task-definition.json").read_text())["containerDefinitions"][0]
    options, image, command = docker_run_args(migrate, volumes, secret_values, airflow_env)
    code, _, err, _ = run(image, *command, options=tuple(options), label=f"{LABEL}={stack.tag}", timeout=600)
    assert code == 0, err[-3000:]
    assert "database migrated" in err
    assert "Tini is not running as PID 1" not in err  # the image's tini is a subreaper under ECS's init

    task = json.loads((out / "scheduler.task-definition.json").read_text())
    init, airflow, sidecar, metrics = task["containerDefinitions"]
    options, image, command = docker_run_args(init, volumes, secret_values, aws)
    code, _, err, _ = run(image, *command, options=tuple(options), label=f"{LABEL}={stack.tag}")
    assert code == 0, err[-3000:]
    assert published_tree(volumes["dags"]) == {"hello.py"}
    assert "Tini is not running as PID 1" not in err

    for container, extra_env in ((airflow, airflow_env), (sidecar, aws)):
        options, image, command = docker_run_args(container, volumes, secret_values, extra_env)
        name = f"afe-{stack.tag}-ecs-{container['name']}"
        docker(
            "run", "-d", "--name", name, "--network", "host", "--label", f"{LABEL}={stack.tag}",
            *health_options(container), *options, image, *command,
        )  # fmt: skip
        wait_healthy(name, timeout=container["healthCheck"]["startPeriod"] + 60)

    # scaling-metrics beside it reads the same database and broker and prints the backlog as EMF.
    options, image, command = docker_run_args(metrics, volumes, secret_values, airflow_env)
    name = f"afe-{stack.tag}-ecs-{metrics['name']}"
    docker(
        "run", "-d", "--name", name, "--network", "host", "--label", f"{LABEL}={stack.tag}",
        *options, image, *command,
    )  # fmt: skip

    def backlog_lines() -> list[dict]:
        out = docker("logs", name, check=False).stdout.splitlines()
        return [json.loads(line) for line in out if '"DesiredWorkers"' in line]

    reading = wait_for(backlog_lines, timeout=60, step=1, what="a backlog reading")[0]
    emf.check(reading)
    assert (reading["Backlog"], reading["DesiredWorkers"]) == (0, 0), reading

    # The long-running sidecar follows the next release into the volume the scheduler reads.
    dags.write(tmp_path / "dags", {"hello.py": dags.HEADER, "second.py": dags.HEADER})
    stack.publish(tmp_path / "dags")
    wait_for(
        lambda: published_tree(volumes["dags"]) == {"hello.py", "second.py"}, timeout=60, step=1, what="2nd"
    )
