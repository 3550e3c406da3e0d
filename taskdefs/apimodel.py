"""Checks a document against the AWS API model botocore ships: what the CLI's
--cli-input-json would accept for that operation (names, types, required members), and
the constraints botocore's own validator leaves to the service (enums, lengths, ranges)."""

from collections.abc import Iterator
from functools import cache

import botocore.session
from botocore.validate import ParamValidator

# The operation each kind of document is the input of.
OPERATIONS = {
    "task-definition": ("ecs", "RegisterTaskDefinition"),
    "service": ("ecs", "CreateService"),
    "target-group": ("elbv2", "CreateTargetGroup"),
    "scalable-target": ("application-autoscaling", "RegisterScalableTarget"),
    "scaling-policy": ("application-autoscaling", "PutScalingPolicy"),
    "scheduled-action": ("application-autoscaling", "PutScheduledAction"),
    "alarm": ("cloudwatch", "PutMetricAlarm"),
}
NUMBERS = ("integer", "long", "float", "double")


@cache
def _input_shape(service: str, operation: str):
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(operation).input_shape


def problems(kind: str, document: dict) -> list[str]:
    """What the API model refuses in `document`, one line each; [] when it is accepted."""
    service, operation = OPERATIONS[kind]
    shape = _input_shape(service, operation)
    report = ParamValidator().validate(document, shape)
    lines = report.generate_report().splitlines() if report.has_errors() else []
    lines += list(_constraints(document, shape, ""))
    return [f"{service} {operation}: {line.strip()}" for line in lines if line.strip()]


def _constraints(value, shape, where: str) -> Iterator[str]:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                yield from _constraints(item, shape.members[key], f"{where}.{key}" if where else key)
    elif kind == "list" and isinstance(value, list):
        yield from _bounded(len(value), shape, where, "items")
        for index, item in enumerate(value):
            yield from _constraints(item, shape.member, f"{where}[{index}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from _constraints(item, shape.value, f"{where}.{key}")
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            valid = ", ".join(shape.enum)
            yield f"Invalid value for parameter {where}, value: {value}, valid values: {valid}"
        yield from _bounded(len(value), shape, where, "characters", minimum=False)
    elif kind in NUMBERS and isinstance(value, int | float) and not isinstance(value, bool):
        limits = shape.metadata
        if ("min" in limits and value < limits["min"]) or ("max" in limits and value > limits["max"]):
            yield f"Invalid range for parameter {where}, value: {value}, valid range: {_range(limits)}"


def _bounded(size: int, shape, where: str, unit: str, minimum: bool = True) -> Iterator[str]:
    """Length limits; botocore checks a string's minimum itself."""
    limits = shape.metadata
    if "max" in limits and size > limits["max"]:
        yield f"Invalid length for parameter {where}: {size} {unit}, at most {limits['max']}"
    if minimum and "min" in limits and size < limits["min"]:
        yield f"Invalid length for parameter {where}: {size} {unit}, at least {limits['min']}"


def _range(limits: dict) -> str:
    return f"{limits.get('min', '-inf')}-{limits.get('max', 'inf')}"
