"""Checks a document against the AWS API model botocore ships: what the CLI's
--cli-input-json would accept for that operation (names, types, required members)."""

from functools import cache

import botocore.session
from botocore.validate import ParamValidator

# The operation each kind of document is the input of.
OPERATIONS = {
    "task-definition": ("ecs", "RegisterTaskDefinition"),
    "service": ("ecs", "CreateService"),
    "target-group": ("elbv2", "CreateTargetGroup"),
}


@cache
def _input_shape(service: str, operation: str):
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(operation).input_shape


def problems(kind: str, document: dict) -> list[str]:
    """What the API model refuses in `document`, one line each; [] when it is accepted."""
    service, operation = OPERATIONS[kind]
    report = ParamValidator().validate(document, _input_shape(service, operation))
    if not report.has_errors():
        return []
    lines = report.generate_report().splitlines()
    return [f"{service} {operation}: {line.strip()}" for line in lines if line.strip()]
