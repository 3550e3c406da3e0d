"""Guardrails for task definitions: how each container starts, runs, logs and stops."""

import re
from collections.abc import Iterator

from entrypoint.roles import ONE_OFF
from taskdefs import apimodel, awsids
from taskdefs.credentials import command_line_secrets, credentials_in, is_literal, names_a_secret
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
# The uid part of USER[:GROUP] that is root, however spelt: root, 0, 00, +0, or nothing at all.
ROOT_UID = re.compile(r"root|[+-]?0+|", re.I)
HOST_NAMESPACES = {"pidMode": "processes", "ipcMode": "shared memory and semaphores"}
AWSLOGS_OPTIONS = ("awslogs-group", "awslogs-region", "awslogs-stream-prefix")
AUTH_MANAGER = "AIRFLOW__CORE__AUTH_MANAGER"
DEVELOPMENT_AUTH_MANAGER = "SimpleAuthManager"  # what the image's airflow.cfg sets


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


@rule(
    "secrets-in-environment",
    "no secret in plain `environment`: a name that says secret with a value, or a value that is a credential",
)
def secrets_in_environment(inputs: Inputs):
    for path, _, container in _containers(inputs):
        where = f"container {container.get('name')}: environment"
        for variable in container.get("environment", []) or []:
            name, value = str(variable.get("name", "")), str(variable.get("value", ""))
            found = credentials_in(value)
            if found:
                yield path, f"{where} {name} holds {', '.join(found)}; use `secrets`"
            elif names_a_secret(name) and is_literal(value):
                yield path, f"{where} {name} looks secret; set it through `secrets`"


@rule(
    "secrets-in-command",
    "no key or password in `entryPoint`, `command` or `healthCheck.command` (or a shell script in them)",
)
def secrets_in_command(inputs: Inputs):
    for path, _, container in _containers(inputs):
        for field, what in _command_line_secrets(container):
            message = f"container {container.get('name')}: {field} holds {what}; pass it through `secrets`"
            yield path, message


def _command_line_secrets(container: dict) -> Iterator[tuple[str, str]]:
    """(field[index], what it gives away); entryPoint and command are one argv."""
    entry_point = _words(container.get("entryPoint"))
    command = _words(container.get("command"))
    for index, what in command_line_secrets(entry_point + command):
        if index < len(entry_point):
            yield f"entryPoint[{index}]", what
        else:
            yield f"command[{index - len(entry_point)}]", what
    for index, what in command_line_secrets(_words((container.get("healthCheck") or {}).get("command"))):
        yield f"healthCheck.command[{index}]", what


def _words(words) -> list[str]:
    return [str(word) for word in words or []]


@rule(
    "sidecar-rollback-rule",
    "no container sets S3SYNC_ADOPT_LINEAGE=any: a bucket write alone could then roll the DAGs back",
)
def sidecar_rollback_rule(inputs: Inputs):
    for path, _, container in _containers(inputs):
        for variable in container.get("environment", []) or []:
            if variable.get("name") == "S3SYNC_ADOPT_LINEAGE" and str(variable.get("value")).strip() == "any":
                message = (
                    f"container {container.get('name')}: S3SYNC_ADOPT_LINEAGE=any follows every new history "
                    "of LATEST.json; adopt one lineage by its id, or use s3sync rollback"
                )
                yield path, message


@rule(
    "no-environment-files", "no container reads `environmentFiles`: plain files, not secrets; use `secrets`"
)
def no_environment_files(inputs: Inputs):
    for path, _, container in _containers(inputs):
        for file in container.get("environmentFiles", []) or []:
            message = (
                f"container {container.get('name')}: environmentFiles loads {file.get('value')!r} "
                "as plain environment, readable by whoever reads the file; use `secrets`"
            )
            yield path, message


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


@rule(
    "non-root", "every container names a user whose uid part is a non-zero number or a name other than root"
)
def non_root(inputs: Inputs):
    for path, _, container in _containers(inputs):
        user = str(container.get("user", ""))
        if not user.strip():
            yield path, f'container {container.get("name")} names no user (set "user": "50000:0")'
        elif _runs_as_root(user):
            yield path, f"container {container.get('name')} runs as root: user {user!r}"


def _runs_as_root(user: str) -> bool:
    return bool(ROOT_UID.fullmatch(user.split(":", 1)[0].strip()))


@rule("no-added-capabilities", "no container adds Linux capabilities (`linuxParameters.capabilities.add`)")
def no_added_capabilities(inputs: Inputs):
    for path, _, container in _containers(inputs):
        added = ((container.get("linuxParameters") or {}).get("capabilities") or {}).get("add") or []
        if added:
            message = (
                f"container {container.get('name')}: linuxParameters.capabilities.add gives it "
                f"{', '.join(map(str, added))}; it needs none"
            )
            yield path, message


@rule("no-host-namespaces", "tasks share no namespace with the host: `pidMode` and `ipcMode` are not host")
def no_host_namespaces(inputs: Inputs):
    for path, task in _tasks(inputs):
        for field, what in HOST_NAMESPACES.items():
            if str(task.get(field, "")).strip().lower() == "host":
                yield path, f"{field} is host: every container sees and can touch the host's {what}"


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


@rule(
    "image-pinned",
    "every image is pinned: by a digest, or by a full version tag (three numbers: 3.1.8, v1.2.3, 3.1.8-1)",
)
def image_pinned(inputs: Inputs):
    for path, _, container in _containers(inputs):
        image = str(container.get("image", ""))
        problem = awsids.pinning_problem(*awsids.tag_and_digest(image))
        if problem:
            yield path, f"container {container.get('name')}: image {image!r} {problem}"


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
