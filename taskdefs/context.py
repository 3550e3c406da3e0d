"""The values the templates' placeholders name: the settings plus what follows from them
(ARNs, URLs, role names), per role."""

import itertools
import math

from taskdefs import awsids

ROLE_TAG = "airflow-ecs:role"
MAX_STEPS = 20  # step adjustments per Application Auto Scaling policy
METRICS_NAMESPACE = "airflow-ecs/workers"  # scaling-metrics writes DesiredWorkers there
SECRETS_INJECTED = ("database", "jwt_secret", "fernet_key", "api_secret_key", "redis_password")
GROUP_LISTS = ("admin_groups", "op_groups", "user_groups", "viewer_groups")


def shared(settings: dict) -> dict:
    """The context every template of one deployment shares."""
    name, region, account = settings["name"], settings["region"], settings["account"]
    partition = awsids.partition_of(region)
    dags, logs, api, secrets = settings["dags"], settings["logs"], settings["api"], settings["secrets"]
    return {
        **settings,
        "partition": partition,
        "dns_suffix": awsids.dns_suffix(partition),
        "dags": {
            **dags,
            "source": f"s3://{dags['bucket']}/{dags['prefix']}",
            "efs": dags["volume"] == "efs",
            "task_local": dags["volume"] == "task",
            "interval": str(dags["sync_interval"]),
            **_efs_arns(dags, partition, region, account),
        },
        "logs": {**logs, "remote_base": f"s3://{logs['bucket']}/{logs['prefix']}"},
        "database": {**settings["database"], "port": str(settings["database"]["port"])},
        "redis": {**settings["redis"], "port": str(settings["redis"]["port"])},
        "api": {
            **api,
            "url": api["url"].rstrip("/"),
            "execution_api_url": f"{api['url'].rstrip('/')}/execution/",
        },
        # Airflow reads each group list as one comma-separated value.
        "auth": {**settings["auth"], **{key: ",".join(settings["auth"][key]) for key in GROUP_LISTS}},
        "iam": {
            "execution_role_arn": f"arn:{partition}:iam::{account}:role/{name}-execution",
            "repository_arns": sorted(
                {awsids.repository_arn(image) for image in settings["images"].values()}
            ),
            "injected_secret_arns": sorted(
                {awsids.secret_resource_arn(secrets[key]) for key in SECRETS_INJECTED if secrets[key]}
            ),
            "backend_secret_arns": [
                f"arn:{partition}:secretsmanager:{region}:{account}:secret:{prefix}/*"
                for prefix in secrets["backend_prefixes"]
            ],
        },
        # Key/Value pairs, as ELBv2 and CloudWatch take them (ECS wants key/value)
        "tag_pairs": [{"Key": key, "Value": value} for key, value in settings["tags"].items()],
        "workers": workers(settings),
    }


def workers(settings: dict) -> dict:
    """The autoscaling values: the worker service's id, and the steps that turn the
    DesiredWorkers metric into a task count."""
    scaling = settings["workers"]
    return {
        **scaling,
        "resource_id": f"service/{settings['cluster']}/{settings['name']}-worker",
        "namespace": METRICS_NAMESPACE,
        "deployment": settings["name"],
        "concurrency": str(scaling["concurrency"]),
        "metrics_interval": str(scaling["metrics_interval"]),
        "max_workers": str(scaling["max"]),
        "scheduled": scaling["off_hours"] is not None,
        "steps": exact_capacity_steps(scaling["min"], scaling["max"]),
    }


def exact_capacity_steps(minimum: int, maximum: int) -> list[dict]:
    """Step adjustments for an alarm at DesiredWorkers >= 1: a metric in [low, high) sets the
    count to `high` workers. Up to 20 workers one step each; beyond, 20 even steps, each
    rounding up to its upper end."""
    bounds = sorted({math.ceil(i * maximum / MAX_STEPS) for i in range(1, MAX_STEPS + 1)} | {0})
    steps = []
    for low, high in itertools.pairwise(bounds):
        step = {"MetricIntervalLowerBound": low, "ScalingAdjustment": max(high, minimum)}
        if high < maximum:
            step["MetricIntervalUpperBound"] = high  # bounds count from the threshold, 1
        steps.append(step)
    return steps


def for_role(shared_context: dict, role: str, has_task_role: bool) -> dict:
    name, partition, account = shared_context["name"], shared_context["partition"], shared_context["account"]
    size = shared_context["sizes"][role]
    role_context = {
        "name": role,
        "family": f"{name}-{role}",
        "cpu": str(size["cpu"]),
        "memory": str(size["memory"]),
        "count": size.get("count", 0),
        "tags": [
            *({"key": key, "value": value} for key, value in shared_context["tags"].items()),
            {"key": ROLE_TAG, "value": role},
        ],
    }
    if has_task_role:
        role_context["task_role_arn"] = f"arn:{partition}:iam::{account}:role/{name}-{role}-task"
    return {**shared_context, "role": role_context}


def _efs_arns(dags: dict, partition: str, region: str, account: str) -> dict:
    if dags["volume"] != "efs":
        return {}
    prefix = f"arn:{partition}:elasticfilesystem:{region}:{account}"
    return {
        "file_system_arn": f"{prefix}:file-system/{dags['efs_file_system_id']}",
        "access_point_arn": f"{prefix}:access-point/{dags['efs_access_point_id']}",
    }
