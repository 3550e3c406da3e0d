"""Questions the rules ask of a task definition or service: its role, its containers."""

from entrypoint.roles import ROLES
from taskdefs.context import ROLE_TAG


def containers(task_definition: dict) -> list[dict]:
    return [c for c in task_definition.get("containerDefinitions", []) if isinstance(c, dict)]


def tag(document: dict, key: str) -> str | None:
    for item in document.get("tags", []) or []:
        if isinstance(item, dict) and item.get("key") == key:
            return item.get("value")
    return None


def role_of_task(task_definition: dict) -> str | None:
    """The Airflow role: the airflow-ecs:role tag, else the role a container's command runs."""
    tagged = tag(task_definition, ROLE_TAG)
    if tagged:
        return tagged
    for container in containers(task_definition):
        role = role_of_command(container.get("command") or [])
        if role:
            return role
    return None


def role_of_command(command: list) -> str | None:
    words = [str(word) for word in command]
    if "worker" in words:  # this image's `worker`, or `airflow celery worker`
        return "worker"
    if words and words[0] == "airflow":
        words = words[1:]
    return words[0] if words and words[0] in ROLES else None


def family(task_definition_reference: str) -> str:
    """The family of `name`, `name:3` or `arn:...:task-definition/name:3`."""
    return task_definition_reference.rsplit("/", 1)[-1].split(":", 1)[0]


def is_worker_container(container: dict) -> bool:
    return role_of_command(container.get("command") or []) == "worker"


def started_after(container: dict, condition: str) -> set[str]:
    """The containers `container` waits for with this dependsOn condition."""
    return {
        d.get("containerName")
        for d in container.get("dependsOn", []) or []
        if isinstance(d, dict) and d.get("condition") == condition
    }


def writable_volumes(container: dict) -> set[str]:
    return {m.get("sourceVolume") for m in container.get("mountPoints", []) or [] if not m.get("readOnly")}


def mounted_volumes(container: dict) -> set[str]:
    return {m.get("sourceVolume") for m in container.get("mountPoints", []) or []}
