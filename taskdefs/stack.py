"""The infrastructure half of the settings, read from the outputs of an infra/ stack.

`taskdefs settings --from-stack NAME --base FILE --out FILE` takes the images, sizes and
workers from the base settings and everything the stack created from its outputs, so the
rendered task definitions name exactly the subnets, endpoints, secrets and stores that exist.
"""

import copy
import os
import re
from collections.abc import Callable
from pathlib import Path

import botocore.exceptions
import tomli_w

from taskdefs import TaskdefsError, render, settings

STACK_ARN = re.compile(r"arn:[^:]+:cloudformation:(?P<region>[^:]+):(?P<account>\d{12}):stack/.+")
READY = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")


def _items(value: str) -> list[str]:
    # Conditional items of a joined list (an endpoint turned off) come out empty.
    return [item for item in value.split(",") if item]


# Stack output -> (the settings key it fills, how its text becomes the value).
OUTPUTS: dict[str, tuple[str, Callable[[str], object]]] = {
    "Name": ("name", str),
    "ClusterName": ("cluster", str),
    "EcsExec": ("ecs_exec", lambda value: value == "true"),
    "VpcId": ("network.vpc_id", str),
    "TaskSubnetIds": ("network.subnets", _items),
    "TaskSecurityGroupId": ("network.security_groups", _items),
    "VpcEndpoints": ("network.vpc_endpoints", _items),
    "DagBucketName": ("dags.bucket", str),
    "DagFileSystemId": ("dags.efs_file_system_id", str),
    "DagAccessPointId": ("dags.efs_access_point_id", str),
    "LogBucketName": ("logs.bucket", str),
    "ContainerLogGroupName": ("logs.log_group", str),
    "DatabaseHost": ("database.host", str),
    "DatabasePort": ("database.port", int),
    "DatabaseSecretArn": ("secrets.database", str),
    "RedisHost": ("redis.host", str),
    "RedisPort": ("redis.port", int),
    "RedisAuthSecretArn": ("secrets.redis_password", str),
    "JwtSecretArn": ("secrets.jwt_secret", str),
    "FernetKeySecretArn": ("secrets.fernet_key", str),
    "ApiSecretKeyArn": ("secrets.api_secret_key", str),
    "ApiUrl": ("api.url", str),
    "ApiTargetGroupArn": ("api.target_group_arn", str),
    "KmsKeyArn": ("kms.key_arn", str),  # empty: the task roles are not granted the key
    "LoadBalancerArn": ("auth.alb_arn", str),
    "OidcIssuer": ("auth.issuer", str),
    "OidcClientId": ("auth.client_id", str),
}


def region_of(stack: str) -> str | None:
    """The region to ask: a stack ARN's own, else AWS_REGION (None: botocore's configuration)."""
    place = STACK_ARN.fullmatch(stack)
    return place["region"] if place else os.environ.get("AWS_REGION") or None


def read_outputs(cloudformation, stack_name: str) -> tuple[dict[str, str], str, str]:
    """The stack's outputs by key, and the region and account it lives in."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        raise TaskdefsError(f"stack {stack_name}: {exc.response['Error'].get('Message', exc)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise TaskdefsError(f"stack {stack_name}: cannot ask CloudFormation: {exc}") from None
    stack = stacks[0]
    if stack["StackStatus"] not in READY:
        raise TaskdefsError(f"stack {stack_name} is {stack['StackStatus']}, not complete")
    place = STACK_ARN.fullmatch(stack["StackId"])
    if not place:
        raise TaskdefsError(f"stack {stack_name}: unexpected stack id {stack['StackId']!r}")
    outputs = {output["OutputKey"]: output.get("OutputValue", "") for output in stack.get("Outputs", [])}
    return outputs, place["region"], place["account"]


def merge(base: dict, outputs: dict[str, str], region: str, account: str, stack_name: str) -> dict:
    """The base settings with every key the stack knows replaced by the stack's value."""
    missing = sorted(set(OUTPUTS) - set(outputs))
    if missing:
        raise TaskdefsError(
            f"stack {stack_name} has no output {', '.join(missing)}: is it a stack of infra/airflow-ecs.yaml?"
        )
    merged = copy.deepcopy(base)
    _put(merged, "region", region)
    _put(merged, "account", account)
    _put(merged, "dags.volume", "efs")
    for output, (key, convert) in OUTPUTS.items():
        text = outputs[output]
        if key == "kms.key_arn" and not text:
            _remove(merged, key)
            continue
        try:
            _put(merged, key, convert(text))
        except ValueError:
            raise TaskdefsError(
                f"stack {stack_name}: output {output} is not what {key} takes: {text!r}"
            ) from None
    return merged


def write(merged: dict, out: Path) -> None:
    """Staged beside `out`, checked by the settings reader, then renamed: bad settings write nothing."""
    if out.suffix != ".toml":
        raise TaskdefsError(f"{out}: the settings are written as TOML: name the file *.toml")
    try:
        staged = render.stage(out, tomli_w.dumps(merged))
    except OSError as exc:
        raise TaskdefsError(f"{out}: cannot write: {exc.strerror}; nothing written") from None
    try:
        settings.load(staged)
        os.replace(staged, out)
    except TaskdefsError as exc:
        raise TaskdefsError(str(exc).replace(str(staged), str(out)) + "\nnothing written") from None
    except OSError as exc:
        raise TaskdefsError(f"{out}: cannot write: {exc.strerror}; nothing written") from None
    finally:
        staged.unlink(missing_ok=True)


def _put(tree: dict, key: str, value: object) -> None:
    *tables, leaf = key.split(".")
    for table in tables:
        tree = tree.setdefault(table, {})
    tree[leaf] = value


def _remove(tree: dict, key: str) -> None:
    *tables, leaf = key.split(".")
    for table in tables:
        tree = tree.get(table, {})
    tree.pop(leaf, None)
