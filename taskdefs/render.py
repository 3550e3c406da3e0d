"""Fill the templates of config/ecs/ from the settings, check every result, then write them.

Nothing is written unless every document passes the API model and every lint rule.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from taskdefs import TaskdefsError, context, lint
from taskdefs.documents import Document, endpoints_document
from taskdefs.template import fill

TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "ecs"
ENDPOINTS_FILE = "vpc-endpoints.json"


@dataclass(frozen=True)
class Output:
    filename: str
    kind: str
    document: dict


@dataclass(frozen=True)
class Rendered:
    outputs: list[Output]
    skipped: dict[str, str]  # file name -> why it was not rendered

    def documents(self) -> list[Document]:
        """The outputs as lint reads them."""
        return [Document(output.filename, output.kind, output.document) for output in self.outputs]


def render(settings: dict, templates: Path = TEMPLATES) -> Rendered:
    shared = context.shared(settings)
    roles = sorted(path.stem for path in (templates / "task-definitions").glob("*.json"))
    if not roles:
        raise TaskdefsError(f"{templates}: no task-definitions/*.json templates")
    outputs, skipped = [], {}
    for role in roles:
        role_context = _role_context(templates, shared, role)
        outputs.append(_fill(templates / f"task-definitions/{role}.json", role_context, "task-definition"))
        if (templates / "iam" / f"{role}.json").exists():
            outputs.append(_fill(templates / f"iam/{role}.json", role_context, "policy", "task-role.policy"))
        if (templates / "target-groups" / f"{role}.json").exists():
            outputs.append(_fill(templates / f"target-groups/{role}.json", role_context, "target-group"))
        if (templates / "services" / f"{role}.json").exists():
            if role == "api-server" and not settings["api"]["target_group_arn"]:
                skipped[f"{role}.service.json"] = (
                    "api.target_group_arn is not set: create the target group from "
                    f"{role}.target-group.json, set its ARN, render again"
                )
            else:
                outputs.append(_fill(templates / f"services/{role}.json", role_context, "service"))
    outputs.append(_fill(templates / "iam/execution-role.json", shared, "policy", "policy", "execution-role"))
    outputs.append(
        _fill(templates / "iam/trust-policy.json", shared, "trust-policy", "trust-policy", "ecs-tasks")
    )
    autoscaling, not_scheduled = _autoscaling(templates, shared)
    outputs += autoscaling
    skipped.update(not_scheduled)
    endpoints = endpoints_document(settings["region"], settings["network"]["vpc_endpoints"])
    outputs.append(Output(ENDPOINTS_FILE, "endpoints", endpoints))
    return Rendered(outputs, skipped)


def _autoscaling(templates: Path, shared: dict) -> tuple[list[Output], dict[str, str]]:
    """autoscaling/NAME.KIND.json: the workers' scalable target, policies, alarms, schedules."""
    outputs, skipped = [], {}
    for template in sorted((templates / "autoscaling").glob("*.json")):
        kind = template.stem.rsplit(".", 1)[-1]
        if kind == "scheduled-action" and not shared["workers"]["scheduled"]:
            skipped[template.name] = "workers.off_hours and workers.on_hours are not set"
            continue
        outputs.append(Output(template.name, kind, fill(_load(template), shared, str(template))))
    return outputs, skipped


def check(rendered: Rendered, source: Path) -> None:
    """Every output against the API model and the lint rules; TaskdefsError lists what fails.

    A missing VPC endpoint is the settings' fault and is reported against the key that lists
    them; anything else would be a template's, and names the rendered file."""
    # The endpoint list is among the outputs (vpc-endpoints.json), so lint reads it from there.
    problems = [
        f"{source}: network.vpc_endpoints: {finding.message}"
        if finding.rule == "endpoint-coverage" and finding.path == ENDPOINTS_FILE
        else f"rendered {finding}"
        for finding in lint.run(rendered.documents())
    ]
    if problems:
        raise TaskdefsError("\n".join(problems))


def write(rendered: Rendered, out: Path) -> None:
    """All files staged beside their targets first, then each renamed into place: a write
    that fails changes nothing. A file this render skipped is removed, not left stale."""
    created = not out.exists()
    staged: list[tuple[Path, Path]] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for output in rendered.outputs:
            target = out / output.filename
            if target.is_dir():
                raise IsADirectoryError(0, "a directory is in the way", str(target))
            staged.append((stage(target, json.dumps(output.document, indent=2) + "\n"), target))
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise TaskdefsError(f"{exc.filename or out}: cannot write: {exc.strerror}; nothing written") from None
    for temporary, target in staged:
        os.replace(temporary, target)
    for filename in rendered.skipped:
        (out / filename).unlink(missing_ok=True)


def _role_context(templates: Path, shared: dict, role: str) -> dict:
    role_context = context.for_role(shared, role, has_task_role=(templates / "iam" / f"{role}.json").exists())
    containers = {
        path.stem.replace("-", "_"): fill(_load(path), role_context, str(path))
        for path in sorted((templates / "containers").glob("*.json"))
    }
    return {**role_context, "containers": containers}


def _fill(
    template: Path, values: dict, kind: str, suffix: str | None = None, stem: str | None = None
) -> Output:
    """Output `<stem>.<suffix>.json`: by default the template's name and the document's kind."""
    filename = f"{stem or template.stem}.{suffix or kind}.json"
    return Output(filename, kind, fill(_load(template), values, str(template)))


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise TaskdefsError(f"{path}: cannot read the template: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TaskdefsError(f"{path}: the template is not valid JSON: {exc}") from None


def stage(target: Path, text: str) -> Path:
    """`text` in a new hidden file beside `target`, to be renamed onto it."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return Path(temporary)
