"""README shows the api-server, scheduler and worker task definitions as rendered from the
example settings; docs/ecs.md lists every flag with its variable. Both stay in step here."""

import json
import re
from pathlib import Path

from taskdefs.cli import LINT, RENDER, main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
README = REPO / "README.md"
DOCS = REPO / "docs" / "ecs.md"
SHOWN_ROLES = ("api-server", "scheduler", "worker")


def condensed(task: dict) -> str:
    """One line per container: what starts it, what it runs, how ECS checks and stops it."""
    lines = []
    for container in task["containerDefinitions"]:
        view = {
            "name": container["name"],
            "command": container["command"],
            "essential": container["essential"],
        }
        for key in ("dependsOn", "restartPolicy", "stopTimeout"):
            if key in container:
                view[key] = container[key]
        if "portMappings" in container:
            view["ports"] = [mapping["containerPort"] for mapping in container["portMappings"]]
        if "healthCheck" in container:
            check = container["healthCheck"]
            view["healthCheck"] = {"command": check["command"][1:], "startPeriod": check["startPeriod"]}
        lines.append(json.dumps(view))
    return "[\n  " + ",\n  ".join(lines) + "\n]"


def test_readme_shows_the_rendered_flow_of_api_server_scheduler_and_worker(tmp_path):
    assert main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)]) == 0
    readme = README.read_text()
    for role in SHOWN_ROLES:
        task = json.loads((tmp_path / f"{role}.task-definition.json").read_text())
        block = re.search(rf"<!-- task definition: {role} -->\n```json\n(.*?)\n```", readme, re.S)
        assert block, f"README shows no {role} task definition"
        assert block[1] == condensed(task), f"README's {role} task definition is not what render writes"


def test_docs_list_every_flag_with_its_variable():
    rows = dict(re.findall(r"^\| `(--[\w-]+)` \| `(TASKDEFS_\w+)` \|", DOCS.read_text(), re.M))
    assert rows == {flag.name: flag.env for flag in (*RENDER, *LINT)}
