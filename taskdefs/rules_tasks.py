"""Guardrails for task definitions: how each container starts, runs, logs and stops."""

import re
from collections.abc import Iterator

from entrypoint.roles import ONE_OFF
from taskdefs import apimodel, awsids
from taskdefs.ruleset import Inputs, rule
from taskdefs.shapes import (
    containers,
    is_worker_container,
    mounted_volumes,
    role_of_command,
    role_of_task,
    started_after,
    writable_volumes,
)

MIN_START_PERIOD = 120
FARGATE_MAX_STOP_TIMEOUT = 120
WORKER_STOP_TIMEOUT = FARGATE_MAX_STOP_TIMEOUT  # the most a warm shutdown can get
FARGATE_UNSUPPORTED_LINUX = ("devices", "sharedMemorySize", "maxSwap", "swappiness")
ROOT_USERS = ("root", "0")
AWSLOGS_OPTIONS = ("awslogs-group", "awslogs-region", "awslogs-stream-prefix")
# (A secrets backend is a class name, not a secret.)
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET(?!S?_BACKEND)|TOKEN|FERNET|PRIVATE_KEY|ACCESS_KEY|API_KEY|CREDENTIAL", re.I
)
# Airflow reads AIRFLOW__SECTION__KEY_CMD / _SECRET as a command or a secrets-backend name,
# not as the value; jwt_secret is the one setting whose own name ends in _SECRET.
AIRFLOW_REFERENCE = re.compile(r"AIRFLOW__[A-Z0-9_]+__[A-Z0-9_]+_(?:CMD|SECRET)")
AIRFLOW_SETTINGS_ENDING_IN_SECRET = ("AIRFLOW__API_AUTH__JWT_SECRET",)
AUTH_MANAGER = "AIRFLOW__CORE__AUTH_MANAGER"
DEVELOPMENT_AUTH_MANAGER = "SimpleAuthManager"  # what the image's airflow.cfg sets
SECRET_VALUE = re.compile(
    r"://[^/\s:@]+:[^/\s@]+@"  # a URL with a password in it
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # an AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


def _tasks(inputs: Inputs):
    for document in inputs.of("task-definition"):
        yield document.path, document.body


def _containers(inputs: Inputs):
    for path, task in _tasks(inputs):
        for container in containers(task):
            yield path, task, container


@rule(
    "api-model",
    "the document is what its AWS API accepts (botocore's service model, with its enums, lengths and ranges)",
)
def api_model(inputs: Inputs) -> Iterator[tuple[str, str]]:
    for kind in apimodel.OPERATIONS:
        for document in inputs.of(kind):
            for problem in apimodel.problems(kind, document.body):
                yield document.path, problem


@rule("awsvpc-fargate", "task definitions use the awsvpc network mode and require FARGATE")
def awsvpc_fargate(inputs: Inputs):
    for path, task in _tasks(inputs):
        if task.get("networkMode") != "awsvpc":
            yield path, f"networkMode is {task.get('networkMode')!r}, not 'awsvpc'"
        if "FARGATE" not in (task.get("requiresCompatibilities") or []):
            yield path, "requiresCompatibilities does not include FARGATE"


@rule(
    "health-check",
    f"essential containers of long-running tasks have a health check, startPeriod >= {MIN_START_PERIOD} s",
)
def health_check(inputs: Inputs):
    for path, task, container in _containers(inputs):
        check = container.get("healthCheck")
        name = container.get("name")
        if check is None:
            if container.get("essential", True) and role_of_task(task) not in ONE_OFF:
                yield path, f"container {name} has no healthCheck: ECS ignores the image's HEALTHCHECK"
            continue
        start = check.get("startPeriod", 0)
        if start < MIN_START_PERIOD:
            message = (
                f"container {name}: healthCheck startPeriod is {start} s; a starting Airflow "
                f"component needs >= {MIN_START_PERIOD} s or ECS kills it before it is up"
            )
            yield path, message


@rule("secrets-in-environment", "no secret in plain `environment`: names or values that look secret")
def secrets_in_environment(inputs: Inputs):
    for path, _, container in _containers(inputs):
        where = f"container {container.get('name')}"
        for variable in container.get("environment", []) or []:
            name, value = str(variable.get("name", "")), str(variable.get("value", ""))
            if SECRET_VALUE.search(value):
                yield path, f"{where}: the value of {name} looks like a credential; use `secrets`"
            elif SECRET_NAME.search(_setting_key(name)) and not _is_airflow_reference(name):
                yield path, f"{where}: {name} looks secret; set it through `secrets`"


def _setting_key(name: str) -> str:
    """KEY of AIRFLOW__SECTION__KEY (the section, e.g. SECRETS, says nothing); else the name."""
    parts = name.split("__")
    return parts[2] if len(parts) == 3 and parts[0] == "AIRFLOW" else name


def _is_airflow_reference(name: str) -> bool:
    return bool(AIRFLOW_REFERENCE.fullmatch(name)) and name not in AIRFLOW_SETTINGS_ENDING_IN_SECRET


@rule("secrets-manager-only", "every `secrets` entry is a complete Secrets Manager ARN")
def secrets_manager_only(inputs: Inputs):
    for path, _, container in _containers(inputs):
        for secret in container.get("secrets", []) or []:
            if not awsids.SECRET_ARN.fullmatch(str(secret.get("valueFrom", ""))):
                message = (
                    f"container {container.get('name')}: {secret.get('name')} comes from "
                    f"{secret.get('valueFrom')!r}, not a complete Secrets Manager ARN"
                )
                yield path, message


@rule("efs-encryption", "EFS volumes use an access point, TLS in transit and IAM authorization")
def efs_encryption(inputs: Inputs):
    for path, task in _tasks(inputs):
        for volume in task.get("volumes", []) or []:
            efs = volume.get("efsVolumeConfiguration")
            if efs is None:
                continue
            authorization = efs.get("authorizationConfig") or {}
            missing = [
                what
                for what, ok in (
                    ("transitEncryption ENABLED", efs.get("transitEncryption") == "ENABLED"),
                    ("an accessPointId", bool(authorization.get("accessPointId"))),
                    ("iam ENABLED", authorization.get("iam") == "ENABLED"),
                )
                if not ok
            ]
            if missing:
                yield path, f"EFS volume {volume.get('name')} lacks {', '.join(missing)}"


@rule("awslogs", "every container logs to CloudWatch (awslogs: group, region, stream prefix, non-blocking)")
def awslogs(inputs: Inputs):
    for path, _, container in _containers(inputs):
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        name = container.get("name")
        if config.get("logDriver") != "awslogs":
            yield path, f"container {name} does not log with the awslogs driver"
            continue
        missing = [option for option in AWSLOGS_OPTIONS if not options.get(option)]
        if missing:
            yield path, f"container {name}: awslogs needs {', '.join(missing)}"
        if options.get("mode") != "non-blocking":
            message = f"container {name}: awslogs mode is not non-blocking: a slow log stream would stall it"
            yield path, message


@rule("non-root", "every container names a user that is not root")
def non_root(inputs: Inputs):
    for path, _, container in _containers(inputs):
        user = str(container.get("user", ""))
        if not user:
            yield path, f'container {container.get("name")} names no user (set "user": "50000:0")'
        elif user.split(":", 1)[0] in ROOT_USERS:
            yield path, f"container {container.get('name')} runs as root ({user!r})"


@rule("read-only-root", "every container has a read-only root filesystem (volumes for what it writes)")
def read_only_root(inputs: Inputs):
    for path, _, container in _containers(inputs):
        if container.get("readonlyRootFilesystem") is not True:
            yield path, f"container {container.get('name')} has a writable root filesystem"


@rule("init-process", "every container runs an init process (linuxParameters.initProcessEnabled)")
def init_process(inputs: Inputs):
    for path, _, container in _containers(inputs):
        if (container.get("linuxParameters") or {}).get("initProcessEnabled") is not True:
            message = f"container {container.get('name')} has no initProcessEnabled: zombies and lost signals"
            yield path, message


@rule(
    "worker-stop-timeout",
    f"Celery worker containers get stopTimeout {WORKER_STOP_TIMEOUT} s to finish running tasks",
)
def worker_stop_timeout(inputs: Inputs):
    for path, _, container in _containers(inputs):
        timeout = container.get("stopTimeout", 30)
        if is_worker_container(container) and timeout < WORKER_STOP_TIMEOUT:
            message = (
                f"container {container.get('name')} runs a worker with stopTimeout {timeout} s: "
                f"running tasks are killed; use {WORKER_STOP_TIMEOUT}"
            )
            yield path, message


@rule(
    "sync-before-start", "a container that reads a volume another fills waits for the filling init container"
)
def sync_before_start(inputs: Inputs):
    for path, task, container in _containers(inputs):
        if not container.get("essential", True):
            continue
        for volume in sorted(mounted_volumes(container) - writable_volumes(container)):
            writers = {c.get("name") for c in containers(task) if volume in writable_volumes(c)}
            if writers and not writers & started_after(container, "SUCCESS"):
                message = (
                    f"container {container.get('name')} reads volume {volume} without waiting (dependsOn "
                    f"SUCCESS) for a container that fills it: it could start with no DAGs"
                )
                yield path, message


@rule("volumes-declared", "every mounted volume is declared, and no path is mounted twice in a container")
def volumes_declared(inputs: Inputs):
    for path, task, container in _containers(inputs):
        declared = {volume.get("name") for volume in task.get("volumes", []) or []}
        name = container.get("name")
        for volume in sorted(mounted_volumes(container) - declared, key=str):
            yield path, f"container {name} mounts volume {volume}, which the task does not declare"
        paths = [m.get("containerPath") for m in container.get("mountPoints", []) or []]
        paths += [
            t.get("containerPath") for t in (container.get("linuxParameters") or {}).get("tmpfs", []) or []
        ]
        for twice in sorted({p for p in paths if paths.count(p) > 1}, key=str):
            yield path, f"container {name} mounts two things at {twice}"


@rule("fargate-supported", "nothing Fargate refuses at run time: privileged, devices, host volumes, ...")
def fargate_supported(inputs: Inputs):
    for path, task in _tasks(inputs):
        for volume in task.get("volumes", []) or []:
            if "dockerVolumeConfiguration" in volume or (volume.get("host") or {}).get("sourcePath"):
                yield path, f"volume {volume.get('name')} is a Docker or host volume; Fargate has neither"
    for path, _, container in _containers(inputs):
        linux = container.get("linuxParameters") or {}
        unsupported = [key for key in FARGATE_UNSUPPORTED_LINUX if key in linux]
        if container.get("privileged"):
            unsupported.append("privileged")
        if container.get("stopTimeout", 0) > FARGATE_MAX_STOP_TIMEOUT:
            unsupported.append(f"stopTimeout > {FARGATE_MAX_STOP_TIMEOUT}")
        if unsupported:
            yield (
                path,
                f"container {container.get('name')} uses what Fargate refuses: {', '.join(unsupported)}",
            )


@rule("image-pinned", "every image names a version tag or a digest, never latest")
def image_pinned(inputs: Inputs):
    for path, _, container in _containers(inputs):
        image = str(container.get("image", ""))
        reference = image.rsplit("/", 1)[-1]
        if "@sha256:" in reference:
            continue
        tag = reference.split(":", 1)[1] if ":" in reference else ""
        if not tag or tag == "latest":
            message = (
                f"container {container.get('name')}: image {image!r} is not pinned to a version or digest"
            )
            yield path, message


@rule("api-auth-manager", f"the api-server does not run {DEVELOPMENT_AUTH_MANAGER} (development only)")
def api_auth_manager(inputs: Inputs):
    for path, _, container in _containers(inputs):
        if role_of_command(container.get("command") or []) != "api-server":
            continue
        environment = {v.get("name"): str(v.get("value")) for v in container.get("environment", []) or []}
        manager = environment.get(AUTH_MANAGER)
        if manager is None or manager.rsplit(".", 1)[-1] == DEVELOPMENT_AUTH_MANAGER:
            runs = "the image's default " if manager is None else ""
            message = (
                f"container {container.get('name')} runs {runs}{DEVELOPMENT_AUTH_MANAGER}, for development "
                f"only: set {AUTH_MANAGER} to albauth.manager.AlbAuthManager"
            )
            yield path, message
