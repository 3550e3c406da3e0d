"""Which AWS services the tasks call, so that a NAT-free VPC must have an endpoint for each.

Derived from what the documents show: images in ECR (ecr.api, ecr.dkr, and s3 for the
layers), awslogs (logs), Secrets Manager or SSM `secrets`, ECS Exec (ssmmessages), the
Airflow image (sts: the amazon provider's hooks call it for role_arn connections and
connection tests), and every action the task and execution roles allow.
"""

from taskdefs import awsids
from taskdefs.rules_iam import allowed_actions
from taskdefs.ruleset import Inputs, rule
from taskdefs.shapes import containers, role_of_task

# An IAM action prefix's VPC endpoint name, where it is not the prefix itself.
ENDPOINT_OF_PREFIX = {
    "ecr": ("ecr.api",),
    "cloudwatch": ("monitoring",),
    "elasticfilesystem": (),  # ClientMount/ClientWrite are checked at mount time, no API call
}


def needed(inputs: Inputs) -> dict[str, str]:
    """Endpoint short name -> the first reason the tasks need it."""
    needs: dict[str, str] = {}

    def need(endpoint: str, reason: str) -> None:
        needs.setdefault(endpoint, reason)

    for task in inputs.of("task-definition"):
        family = task.body.get("family")
        if role_of_task(task.body):
            need("sts", f"{family} runs Airflow, whose AWS hooks call STS")
        for container in containers(task.body):
            image = str(container.get("image", ""))
            if awsids.ECR_IMAGE.fullmatch(image):
                for endpoint in ("ecr.api", "ecr.dkr", "s3"):
                    need(endpoint, f"{family} pulls {image} from ECR")
            if (container.get("logConfiguration") or {}).get("logDriver") == "awslogs":
                need("logs", f"{family} logs with awslogs")
            for secret in container.get("secrets", []) or []:
                source = str(secret.get("valueFrom", ""))
                endpoint = "secretsmanager" if ":secretsmanager:" in source else "ssm"
                need(endpoint, f"{family} injects {secret.get('name')}")
    for service in inputs.of("service"):
        if service.body.get("enableExecuteCommand"):
            need("ssmmessages", f"{service.body.get('serviceName')} enables ECS Exec")
    for policy in inputs.of("policy"):
        for statement in policy.body.get("Statement", []):
            for action in allowed_actions(statement):
                prefix = action.split(":", 1)[0]
                for endpoint in ENDPOINT_OF_PREFIX.get(prefix, (prefix,)):
                    need(endpoint, f"{policy.path} allows {action}")
    return needs


@rule(
    "endpoint-coverage", "every AWS service the tasks call has a VPC endpoint (no NAT to reach it otherwise)"
)
def endpoint_coverage(inputs: Inputs):
    tasks = inputs.of("task-definition")
    for task in tasks:
        for container in containers(task.body):
            image = str(container.get("image", ""))
            if not awsids.ECR_IMAGE.fullmatch(image):
                yield task.path, f"image {image!r} is not in ECR: without a NAT it cannot be pulled"
    needs = needed(inputs)
    if not needs:
        return
    if inputs.vpc_endpoints is None:
        where = tasks[0].path if tasks else inputs.documents[0].path
        yield where, "no VPC endpoint list: pass --vpc-endpoints or lint the vpc-endpoints.json render writes"
        return
    for endpoint in sorted(set(needs) - inputs.vpc_endpoints):
        yield where_needed(inputs), f"no VPC endpoint for {endpoint}, needed because {needs[endpoint]}"


def where_needed(inputs: Inputs) -> str:
    endpoints = inputs.of("endpoints")
    return endpoints[0].path if endpoints else "--vpc-endpoints"
