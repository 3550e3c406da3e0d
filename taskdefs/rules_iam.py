"""Guardrails for IAM policies: named actions on named resources."""

import re

from taskdefs.documents import as_list
from taskdefs.ruleset import Inputs, rule

# Actions IAM cannot scope to a resource: "*" is their only Resource.
UNSCOPABLE_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
)


# A resource naming every thing of its type (secret:*, key/*, an S3 bucket or all of one).
WHOLE_TYPE = re.compile(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:(?:\*|[A-Za-z-]+[:/]\*)")
WHOLE_BUCKET = re.compile(r"arn:[^:]+:s3:::(?:\*|[^/]+/\*)")


def allowed_actions(statement: dict) -> list[str]:
    return (
        [str(action) for action in as_list(statement.get("Action", []))]
        if statement.get("Effect") == "Allow"
        else []
    )


@rule("iam-least-privilege", 'policies allow named actions on named resources ("*" only where IAM needs it)')
def iam_least_privilege(inputs: Inputs):
    for document in inputs.of("policy"):
        for index, statement in enumerate(document.body.get("Statement", [])):
            where = f"statement {statement.get('Sid') or index}"
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                yield document.path, f"{where}: NotAction / NotResource allow more than they name"
                continue
            actions = allowed_actions(statement)
            wildcards = [action for action in actions if "*" in action]
            if wildcards:
                yield document.path, f"{where}: wildcard actions {', '.join(wildcards)}"
            resources = [str(resource) for resource in as_list(statement.get("Resource", []))]
            if "*" in resources and not set(actions) <= UNSCOPABLE_ACTIONS:
                scopable = sorted(set(actions) - UNSCOPABLE_ACTIONS)
                yield document.path, f'{where}: Resource "*" for {", ".join(scopable)}, which can be scoped'
            broad = [r for r in resources if WHOLE_TYPE.fullmatch(r) or WHOLE_BUCKET.fullmatch(r)]
            if broad:
                yield (
                    document.path,
                    f"{where}: {', '.join(broad)} names everything of its kind, not one prefix",
                )
            if "s3:ListBucket" in actions and "s3:prefix" not in str(statement.get("Condition", {})):
                yield (
                    document.path,
                    f"{where}: s3:ListBucket without an s3:prefix condition lists the whole bucket",
                )
