"""Rendered documents go into a real AWS API server (moto's, on loopback) as the CLI would
send them: create-target-group, IAM roles and policies, register-task-definition, create-service,
and the workers' autoscaling: register-scalable-target, put-scaling-policy, put-metric-alarm,
put-scheduled-action."""

import json
import tomllib
import uuid
from pathlib import Path

import boto3
import pytest

from taskdefs.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
REGION = "eu-west-1"


@pytest.fixture
def aws(s3_server):
    def client(service: str):
        return boto3.client(service, endpoint_url=s3_server.endpoint, region_name=REGION)

    return client


@pytest.fixture
def network(aws) -> dict:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{index}.0/24")["Subnet"]["SubnetId"]
        for index in (1, 2)
    ]
    group = ec2.create_security_group(
        GroupName=f"airflow-{uuid.uuid4().hex[:8]}", Description="tasks", VpcId=vpc
    )
    return {"vpc_id": vpc, "subnets": subnets, "security_groups": [group["GroupId"]]}


def render(tmp_path: Path, settings: dict, capsys) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    out = tmp_path / "out"
    assert main(["render", "--settings", str(path), "--out", str(out)]) == 0, capsys.readouterr().err
    return out


def documents(out: Path, suffix: str) -> dict[str, dict]:
    return {path.name.removesuffix(suffix): json.loads(path.read_text()) for path in out.glob(f"*{suffix}")}


def test_rendered_documents_register_and_create_in_the_api(tmp_path, capsys, aws, network):
    settings = tomllib.loads(EXAMPLE.read_text())
    name = f"af{uuid.uuid4().hex[:8]}"
    settings.update(name=name, cluster=name)
    settings["network"].update(network)
    del settings["api"]["target_group_arn"]

    # First render: no target group yet, so no api-server service; create the group from it.
    out = render(tmp_path, settings, capsys)
    assert not (out / "api-server.service.json").exists()
    elbv2 = aws("elbv2")
    group = elbv2.create_target_group(**json.loads((out / "api-server.target-group.json").read_text()))
    group = group["TargetGroups"][0]
    assert (group["TargetType"], group["HealthCheckPath"]) == ("ip", "/api/v2/monitor/health")
    settings["api"]["target_group_arn"] = group["TargetGroupArn"]
    out = render(tmp_path, settings, capsys)

    iam = aws("iam")
    trust = (out / "ecs-tasks.trust-policy.json").read_text()
    policies = {f"{name}-execution": "execution-role.policy.json"} | {
        f"{name}-{role}-task": f"{role}.task-role.policy.json"
        for role in documents(out, ".task-role.policy.json")
    }
    for role_name, policy_file in policies.items():
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)
        iam.put_role_policy(
            RoleName=role_name, PolicyName="airflow", PolicyDocument=(out / policy_file).read_text()
        )

    ecs = aws("ecs")
    ecs.create_cluster(clusterName=name, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    task_definitions = documents(out, ".task-definition.json")
    assert set(task_definitions) == {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker",
        "db-migrate",
    }
    for role, document in task_definitions.items():
        registered = ecs.register_task_definition(**document)["taskDefinition"]
        assert registered["family"] == f"{name}-{role}"
        assert registered["status"] == "ACTIVE"
        assert [c["name"] for c in registered["containerDefinitions"]] == [
            c["name"] for c in document["containerDefinitions"]
        ]
        if role != "db-migrate":
            assert registered["taskRoleArn"].endswith(f":role/{name}-{role}-task")
            assert iam.get_role(RoleName=registered["taskRoleArn"].rsplit("/", 1)[1])

    services = documents(out, ".service.json")
    assert set(services) == set(task_definitions) - {"db-migrate"}
    for role, document in services.items():
        created = ecs.create_service(**document)["service"]
        assert created["status"] == "ACTIVE" and created["serviceName"] == f"{name}-{role}"
        assert created["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
        assert created["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == network["subnets"]
    described = ecs.describe_services(cluster=name, services=[f"{name}-api-server"])["services"][0]
    assert described["loadBalancers"][0]["targetGroupArn"] == group["TargetGroupArn"]
    worker = ecs.describe_services(cluster=name, services=[f"{name}-worker"])["services"][0]
    assert worker["desiredCount"] == settings["workers"]["min"]
    register_autoscaling(aws, out, name)


def register_autoscaling(aws, out: Path, name: str) -> None:
    """In the order a deployment runs them: the scalable target, the policies, the alarms
    (whose AlarmActions are the policies' ARNs, known only now), the schedules."""
    scaling, cloudwatch = aws("application-autoscaling"), aws("cloudwatch")
    target = json.loads((out / "worker.scalable-target.json").read_text())
    scaling.register_scalable_target(**target)
    registered = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[target["ResourceId"]])
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in registered["ScalableTargets"]] == [(0, 10)]
    arns = {}
    for stem, document in documents(out, ".scaling-policy.json").items():
        arns[stem.removeprefix("worker-")] = scaling.put_scaling_policy(**document)["PolicyARN"]
    stored = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=target["ResourceId"])
    by_name = {policy["PolicyName"]: policy for policy in stored["ScalingPolicies"]}
    for document in documents(out, ".scaling-policy.json").values():
        stored_config = by_name[document["PolicyName"]]["StepScalingPolicyConfiguration"]
        assert stored_config == document["StepScalingPolicyConfiguration"]
    assert set(arns) == {"follow-backlog", "idle"}
    for stem, document in documents(out, ".alarm.json").items():
        policy = stem.removeprefix("worker-").replace("backlog", "follow-backlog")
        cloudwatch.put_metric_alarm(**document, AlarmActions=[arns[policy]])
        alarm = cloudwatch.describe_alarms(AlarmNames=[document["AlarmName"]])["MetricAlarms"][0]
        assert alarm["AlarmActions"] == [arns[policy]] and alarm["Namespace"] == "airflow-ecs/workers"
        assert alarm["Dimensions"] == [{"Name": "Deployment", "Value": name}]
    for document in documents(out, ".scheduled-action.json").values():
        scaling.put_scheduled_action(**document)
    actions = scaling.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=target["ResourceId"])
    assert {(a["Schedule"], a["Timezone"]) for a in actions["ScheduledActions"]} == {
        ("cron(0 20 ? * MON-FRI *)", "Europe/Dublin"),
        ("cron(0 7 ? * MON-FRI *)", "Europe/Dublin"),
    }


def test_the_api_refuses_a_service_in_subnets_that_do_not_exist(tmp_path, capsys, aws, network):
    """The check above is not vacuous: the server validates what the documents name."""
    settings = tomllib.loads(EXAMPLE.read_text())
    name = f"af{uuid.uuid4().hex[:8]}"
    settings.update(name=name, cluster=name)
    settings["network"].update(network, subnets=["subnet-0123456789abcdef0"])
    out = render(tmp_path, settings, capsys)
    ecs = aws("ecs")
    ecs.create_cluster(clusterName=name, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    ecs.register_task_definition(**json.loads((out / "scheduler.task-definition.json").read_text()))
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="subnet"):
        ecs.create_service(**json.loads((out / "scheduler.service.json").read_text()))
