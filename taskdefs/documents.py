"""The files `taskdefs lint` reads, each recognised by its content: an ECS task definition or
service (the input of register-task-definition / create-service), an ALB target group (the
input of create-target-group), an IAM policy or trust policy, a VPC endpoint list, or the
workers' autoscaling: scalable target, scaling policy, scheduled action, CloudWatch alarm."""

import json
from dataclasses import dataclass
from pathlib import Path

from taskdefs import TaskdefsError

LABELS = {"policy": "IAM policy", "trust-policy": "IAM trust policy", "endpoints": "VPC endpoint list"}


@dataclass(frozen=True)
class Document:
    path: str
    kind: str
    body: dict


def load(path: Path) -> Document:
    try:
        body = json.loads(path.read_text())
    except OSError as exc:
        raise TaskdefsError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TaskdefsError(f"{path}: not valid JSON: {exc}") from None
    kind = kind_of(body)
    if kind is None:
        raise TaskdefsError(
            f"{path}: not a task definition, service, target group, IAM policy, VPC endpoint list, "
            "scalable target, scaling policy, scheduled action or alarm"
        )
    problem = shape_problem(kind, body)
    if problem:
        raise TaskdefsError(f"{path}: not a valid {LABELS[kind]}: {problem}")
    return Document(str(path), kind, body)


def shape_problem(kind: str, body: dict) -> str | None:
    """For the kinds botocore has no model of: the shape the rules rely on."""
    if kind == "endpoints":
        names = body["vpcEndpoints"]
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return "vpcEndpoints must be a list of names"
    if kind in ("policy", "trust-policy"):
        for index, statement in enumerate(body["Statement"]):
            if not isinstance(statement, dict):
                return f"statement {index} is not an object"
            for key in ("Action", "Resource", "NotAction", "NotResource"):
                if not all(isinstance(item, str) for item in as_list(statement.get(key, []))):
                    return f"statement {index}: {key} must be a string or a list of strings"
    return None


def kind_of(body) -> str | None:
    if not isinstance(body, dict):
        return None
    if "containerDefinitions" in body:
        return "task-definition"
    if "serviceName" in body:
        return "service"
    if "TargetType" in body or "HealthCheckPath" in body:
        return "target-group"
    if isinstance(body.get("Statement"), list):
        principals = any(isinstance(s, dict) and "Principal" in s for s in body["Statement"])
        return "trust-policy" if principals else "policy"
    if "vpcEndpoints" in body:
        return "endpoints"
    return _autoscaling_kind(body)


def _autoscaling_kind(body: dict) -> str | None:
    """Application Auto Scaling inputs and the CloudWatch alarms that drive them."""
    if "AlarmName" in body:
        return "alarm"
    if "ServiceNamespace" not in body:
        return None
    if "ScheduledActionName" in body:
        return "scheduled-action"
    if "PolicyName" in body:
        return "scaling-policy"
    return "scalable-target"


def as_list(value) -> list:
    """An IAM element that may be one string or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def endpoints_document(region: str, endpoints: list[str]) -> dict:
    """The endpoint list `taskdefs render` writes beside the task definitions."""
    return {"region": region, "vpcEndpoints": [full_endpoint_name(region, name) for name in endpoints]}


def full_endpoint_name(region: str, name: str) -> str:
    return name if name.startswith("com.amazonaws.") else f"com.amazonaws.{region}.{name}"


def short_endpoint_name(name: str) -> str:
    """ecr.api for com.amazonaws.eu-west-1.ecr.api; a short name stays as it is."""
    if name.startswith("com.amazonaws."):
        return name.split(".", 3)[3] if name.count(".") >= 3 else name
    return name
