"""taskdefs lint: every rule fails its fixture (a one-place edit of the rendered example) and
passes the example itself; files are recognised by content; exit codes."""

import json
import re
import shutil
from pathlib import Path

import pytest

from taskdefs.cli import main
from taskdefs.ruleset import RULES

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
DOCS = REPO / "docs" / "ecs.md"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    assert main(["render", "--settings", str(EXAMPLE), "--out", str(out)]) == 0
    return out


def container(name: str):
    return lambda task: next(c for c in task["containerDefinitions"] if c["name"] == name)


airflow = container("airflow")


def airflow_variable(name: str, value: str):
    """A change setting the airflow container's environment variable `name`, which it has."""

    def change(task: dict) -> None:
        next(v for v in airflow(task)["environment"] if v["name"] == name)["value"] = value

    return change


def statement(sid: str):
    return lambda policy: next(s for s in policy["Statement"] if s["Sid"] == sid)


def edit(file: str, change):
    return file, change


# rule -> failing fixtures: (file, change to its JSON). Each must make that rule, and only
# that rule, report; the unchanged render is the passing fixture of every rule.
FAILING = {
    "api-model": [
        edit("scheduler.task-definition.json", lambda t: airflow(t).update(memoryReservationMiB=512)),
        edit("api-server.target-group.json", lambda g: g.update(Port="8080")),
        # what botocore's validator leaves to the service: enums, lengths, ranges
        edit("worker-backlog.alarm.json", lambda a: a.update(ComparisonOperator="GreaterThan")),
        edit("worker-idle.scaling-policy.json", lambda p: p.update(PolicyName="p" * 300)),
        edit("worker.scalable-target.json", lambda t: t.update(ScalableDimension="ecs:service:Count")),
        edit("worker-off-hours.scheduled-action.json", lambda a: a.pop("ResourceId")),
        edit("worker.service.json", lambda s: s["capacityProviderStrategy"][1].update(weight=1001)),
    ],
    "awsvpc-fargate": [
        edit("scheduler.task-definition.json", lambda t: t.update(networkMode="bridge")),
        edit("scheduler.task-definition.json", lambda t: t.update(requiresCompatibilities=["EC2"])),
    ],
    "health-check": [
        edit("scheduler.task-definition.json", lambda t: airflow(t)["healthCheck"].update(startPeriod=30)),
        edit("triggerer.task-definition.json", lambda t: airflow(t).pop("healthCheck")),
    ],
    "secrets-in-environment": [
        edit(
            "worker.task-definition.json",
            lambda t: airflow(t)["environment"].append(
                {
                    "name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                    "value": "postgresql://airflow:hunter2@db/airflow",
                }
            ),
        ),
        edit(
            "worker.task-definition.json",
            lambda t: airflow(t)["environment"].append(
                {"name": "AIRFLOW__CORE__FERNET_KEY", "value": "x" * 44}
            ),
        ),
    ],
    "secrets-in-command": [
        edit(
            "scheduler.task-definition.json",
            lambda t: airflow(t)["command"].extend(["--conn-uri", "postgresql://airflow:hunter2@db/airflow"]),
        ),
        edit(
            "worker.task-definition.json",
            lambda t: container("dags-sync")(t).update(
                entryPoint=["sh", "-c", "MYSQL_PWD=hunter2 exec s3sync"]
            ),
        ),
    ],
    "sidecar-rollback-rule": [
        edit(
            "scheduler.task-definition.json",
            lambda t: container("dags-sync")(t)["environment"].append(
                {"name": "S3SYNC_ADOPT_LINEAGE", "value": "any"}
            ),
        ),
    ],
    "no-environment-files": [
        edit(
            "worker.task-definition.json",
            lambda t: airflow(t).update(
                environmentFiles=[{"value": "arn:aws:s3:::example-airflow-dags/airflow.env", "type": "s3"}]
            ),
        ),
    ],
    "secrets-manager-only": [
        edit(
            "api-server.task-definition.json",
            lambda t: airflow(t)["secrets"][0].update(
                valueFrom="arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow/db"
            ),
        ),
    ],
    "efs-encryption": [
        edit(
            "dag-processor.task-definition.json",
            lambda t: t["volumes"][0]["efsVolumeConfiguration"].update(transitEncryption="DISABLED"),
        ),
        edit(
            "dag-processor.task-definition.json",
            lambda t: t["volumes"][0]["efsVolumeConfiguration"]["authorizationConfig"].update(iam="DISABLED"),
        ),
    ],
    "awslogs": [
        edit(
            "worker.task-definition.json",
            lambda t: airflow(t)["logConfiguration"]["options"].update(mode="blocking"),
        ),
        edit(
            "worker.task-definition.json",
            lambda t: container("dags-sync")(t)["logConfiguration"]["options"].pop("awslogs-stream-prefix"),
        ),
    ],
    "non-root": [
        edit("scheduler.task-definition.json", lambda t: container("dags-sync")(t).update(user="0:0")),
        edit("scheduler.task-definition.json", lambda t: container("dags-sync")(t).update(user=" 00:50000")),
        edit("scheduler.task-definition.json", lambda t: airflow(t).pop("user")),
    ],
    "no-added-capabilities": [
        edit(
            "worker.task-definition.json",
            lambda t: airflow(t)["linuxParameters"].update(capabilities={"add": ["SYS_ADMIN"]}),
        ),
    ],
    "no-host-namespaces": [
        edit("worker.task-definition.json", lambda t: t.update(pidMode="host")),
        edit("worker.task-definition.json", lambda t: t.update(ipcMode="host")),
    ],
    "read-only-root": [
        edit("triggerer.task-definition.json", lambda t: airflow(t).update(readonlyRootFilesystem=False)),
    ],
    "init-process": [
        edit(
            "triggerer.task-definition.json", lambda t: container("dags-init")(t).update(linuxParameters={})
        ),
    ],
    "worker-stop-timeout": [
        edit("worker.task-definition.json", lambda t: airflow(t).update(stopTimeout=30)),
    ],
    "sync-before-start": [
        edit("api-server.task-definition.json", lambda t: airflow(t).pop("dependsOn")),
        edit(
            "api-server.task-definition.json",
            lambda t: airflow(t).update(dependsOn=[{"containerName": "dags-init", "condition": "START"}]),
        ),
    ],
    "volumes-declared": [
        edit("scheduler.task-definition.json", lambda t: t.update(volumes=[])),
        edit(
            "worker.task-definition.json",
            lambda t: airflow(t)["mountPoints"].append(
                {"sourceVolume": "dags", "containerPath": "/tmp", "readOnly": False}
            ),
        ),
    ],
    "fargate-supported": [
        edit("worker.task-definition.json", lambda t: airflow(t).update(stopTimeout=300)),
        edit(
            "scheduler.task-definition.json",
            lambda t: airflow(t)["linuxParameters"].update(sharedMemorySize=64),
        ),
        edit(
            "scheduler.task-definition.json",
            lambda t: t["volumes"].append({"name": "docker", "host": {"sourcePath": "/var/run"}}),
        ),
    ],
    "image-pinned": [
        edit(
            "scheduler.task-definition.json",
            lambda t: airflow(t).update(image=airflow(t)["image"].rsplit(":", 1)[0] + ":latest"),
        ),
        edit(
            "scheduler.task-definition.json",
            lambda t: airflow(t).update(image=airflow(t)["image"].rsplit(":", 1)[0] + ":3.1"),
        ),
    ],
    "no-public-ip": [
        edit(
            "scheduler.service.json",
            lambda s: s["networkConfiguration"]["awsvpcConfiguration"].update(assignPublicIp="ENABLED"),
        ),
        edit("scheduler.service.json", lambda s: s.pop("networkConfiguration")),
    ],
    "circuit-breaker": [
        edit(
            "triggerer.service.json",
            lambda s: s["deploymentConfiguration"]["deploymentCircuitBreaker"].update(rollback=False),
        ),
    ],
    "spot-only-for-workers": [
        edit(
            "scheduler.service.json",
            lambda s: s.update(capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
        ),
    ],
    "alb-health-check": [
        edit("api-server.target-group.json", lambda g: g.update(HealthCheckPath="/")),
        edit("api-server.target-group.json", lambda g: g.update(UnhealthyThresholdCount=2)),
        edit("api-server.service.json", lambda s: s.update(healthCheckGracePeriodSeconds=30)),
    ],
    "iam-least-privilege": [
        edit("worker.task-role.policy.json", lambda p: statement("WriteTaskLogs")(p).update(Action=["s3:*"])),
        edit(
            "scheduler.task-role.policy.json", lambda p: statement("ReadDagReleases")(p).update(Resource="*")
        ),
        edit(
            "worker.task-role.policy.json",
            lambda p: statement("WriteTaskLogs")(p).update(Resource="arn:aws:s3:::example-airflow-logs/*"),
        ),
        edit(
            "execution-role.policy.json",
            lambda p: statement("InjectTheNamedSecrets")(p).update(
                Resource="arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"
            ),
        ),
        edit("api-server.task-role.policy.json", lambda p: statement("ListTaskLogs")(p).pop("Condition")),
    ],
    "api-auth-manager": [
        edit(
            "api-server.task-definition.json",
            airflow_variable(
                "AIRFLOW__CORE__AUTH_MANAGER",
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            ),
        ),
        edit(
            "api-server.task-definition.json",
            lambda t: airflow(t).update(
                environment=[
                    v for v in airflow(t)["environment"] if v["name"] != "AIRFLOW__CORE__AUTH_MANAGER"
                ]
            ),
        ),
    ],
    "endpoint-coverage": [
        edit(
            "vpc-endpoints.json",
            lambda e: e["vpcEndpoints"].remove("com.amazonaws.eu-west-1.logs"),
        ),
        edit(
            "triggerer.task-definition.json",
            lambda t: container("dags-sync")(t).update(image="docker.io/example/s3sync:0.1.0"),
        ),
    ],
}
# Edits every rule must accept: what the rules must not mistake for a problem.
PASSING = {
    "airflow settings whose section, not key, says secret": edit(
        "worker.task-definition.json",
        lambda t: airflow(t)["environment"].extend(
            [
                {"name": "AIRFLOW__SECRETS__BACKEND_KWARGS", "value": '{"connections_prefix": "airflow/c"}'},
                {"name": "AIRFLOW__WORKERS__SECRETS_BACKEND", "value": "SecretsManagerBackend"},
                {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET", "value": "airflow/db-url"},
                {"name": "AIRFLOW__CELERY__BROKER_URL", "value": "rediss://cache.example.com:6379/0"},
            ]
        ),
    ),
    "a JSON key of a secret": edit(
        "api-server.task-definition.json",
        lambda t: airflow(t)["secrets"][1].update(valueFrom=airflow(t)["secrets"][1]["valueFrom"] + ":jwt::"),
    ),
    "an image by digest": edit(
        "scheduler.task-definition.json",
        lambda t: airflow(t).update(image=airflow(t)["image"].rsplit(":", 1)[0] + "@sha256:" + "a" * 64),
    ),
    "FabAuthManager on the api-server": edit(
        "api-server.task-definition.json",
        airflow_variable(
            "AIRFLOW__CORE__AUTH_MANAGER",
            "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        ),
    ),
    "a one-off task without a health check": edit(
        "db-migrate.task-definition.json", lambda t: airflow(t).pop("healthCheck", None)
    ),
}
CASES = [(rule, index) for rule, fixtures in FAILING.items() for index in range(len(fixtures))]


def lint_with(rendered: Path, tmp_path: Path, file: str, change, capsys) -> tuple[int, list[str]]:
    copy = tmp_path / "docs"
    shutil.copytree(rendered, copy)
    document = json.loads((copy / file).read_text())
    change(document)
    (copy / file).write_text(json.dumps(document))
    capsys.readouterr()
    code = main(["lint", *map(str, sorted(copy.glob("*.json")))])
    return code, capsys.readouterr().out.splitlines()


def test_every_rule_has_failing_fixtures():
    assert set(FAILING) == set(RULES)


def test_the_rendered_example_is_the_passing_fixture_of_every_rule(rendered, capsys):
    assert main(["lint", *map(str, rendered.glob("*.json"))]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"{len(RULES)} rules: clean" in err


@pytest.mark.parametrize(("rule", "index"), CASES, ids=[f"{rule}-{index}" for rule, index in CASES])
def test_each_failing_fixture_trips_its_rule_alone(rendered, tmp_path, capsys, rule, index):
    file, change = FAILING[rule][index]
    code, lines = lint_with(rendered, tmp_path, file, change, capsys)
    assert code == 1
    assert lines, "no finding"
    assert {line.split(": ")[1] for line in lines} == {rule}, lines
    assert all(re.match(rf"\S+\.json: {rule}: \S", line) for line in lines), lines


@pytest.mark.parametrize("case", list(PASSING))
def test_what_the_rules_must_accept(rendered, tmp_path, capsys, case):
    file, change = PASSING[case]
    code, lines = lint_with(rendered, tmp_path, file, change, capsys)
    assert (code, lines) == (0, [])


def test_a_malformed_document_is_reported_by_the_api_model_alone(rendered, tmp_path, capsys):
    def break_shapes(task):
        airflow(task)["environment"] = ["X=1"]
        airflow(task)["healthCheck"]["startPeriod"] = "120"

    code, lines = lint_with(rendered, tmp_path, "worker.task-definition.json", break_shapes, capsys)
    assert code == 1
    assert len(lines) == 2 and all(
        ": api-model: ecs RegisterTaskDefinition: Invalid type" in line for line in lines
    )


def test_a_file_of_no_known_kind_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    (tmp_path / "broken.json").write_text("{")
    for name, expected in (
        ("other.json", "not a task definition, service"),
        ("broken.json", "not valid JSON"),
    ):
        assert main(["lint", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0]


def test_endpoints_can_come_from_the_flag(rendered, capsys):
    task = str(rendered / "worker.task-definition.json")
    assert main(["lint", task]) == 1
    assert "no VPC endpoint list" in capsys.readouterr().out
    assert main(["lint", "--vpc-endpoints", "ecr.api,ecr.dkr,s3,logs,secretsmanager,sts", task]) == 0
    assert main(["lint", "--vpc-endpoints", "com.amazonaws.eu-west-1.ecr.api,s3", task]) == 1
    out = capsys.readouterr().out
    assert "no VPC endpoint for ecr.dkr" in out and "no VPC endpoint for ecr.api" not in out


def test_docs_list_every_rule():
    section = DOCS.read_text().split("\n## Lint\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))
    assert documented == set(RULES)
