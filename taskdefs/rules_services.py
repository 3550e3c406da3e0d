"""Guardrails for services and the api-server's target group."""

from taskdefs.context import ROLE_TAG
from taskdefs.ruleset import Inputs, rule
from taskdefs.shapes import family, role_of_task, tag

AIRFLOW_HEALTH_PATHS = ("/api/v2/monitor/health", "/api/v2/version")
MIN_GRACE_PERIOD = 120
MAX_INTERVAL = 30
MIN_TIMEOUT = 5
MIN_UNHEALTHY = 3


def _services(inputs: Inputs):
    for document in inputs.of("service"):
        yield document.path, document.body


@rule("no-public-ip", "services run in awsvpc subnets without a public IP")
def no_public_ip(inputs: Inputs):
    for path, service in _services(inputs):
        awsvpc = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration")
        if not awsvpc:
            yield path, f"service {service.get('serviceName')} has no awsvpcConfiguration (private subnets)"
        elif awsvpc.get("assignPublicIp", "DISABLED") != "DISABLED":
            yield path, f"service {service.get('serviceName')} assigns public IPs"


@rule("circuit-breaker", "services roll back a deployment whose tasks do not become healthy")
def circuit_breaker(inputs: Inputs):
    for path, service in _services(inputs):
        breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
        if not (breaker.get("enable") and breaker.get("rollback")):
            message = f"service {service.get('serviceName')} has no deployment circuit breaker with rollback"
            yield path, message


@rule("spot-only-for-workers", "only Celery worker services use FARGATE_SPOT; every service runs on Fargate")
def spot_only_for_workers(inputs: Inputs):
    roles = {task.body.get("family"): role_of_task(task.body) for task in inputs.of("task-definition")}
    for path, service in _services(inputs):
        name = service.get("serviceName")
        strategy = service.get("capacityProviderStrategy") or []
        providers = {item.get("capacityProvider") for item in strategy}
        if not strategy and service.get("launchType") != "FARGATE":
            yield path, f"service {name} runs neither on FARGATE nor through a Fargate capacity provider"
        if providers - {"FARGATE", "FARGATE_SPOT"}:
            yield path, f"service {name} uses capacity providers other than FARGATE and FARGATE_SPOT"
        if "FARGATE_SPOT" not in providers:
            continue
        role = tag(service, ROLE_TAG) or roles.get(family(str(service.get("taskDefinition", ""))))
        if role is None:
            message = (
                f"service {name} uses FARGATE_SPOT; lint it with its task definition to show it runs workers"
            )
            yield path, message
        elif role != "worker":
            yield path, f"service {name} runs {role} on FARGATE_SPOT, which can stop it: Spot is for workers"


@rule(
    "alb-health-check", "the api-server's target group checks an Airflow health path with timings that fit it"
)
def alb_health_check(inputs: Inputs):
    for path, service in _services(inputs):
        grace = service.get("healthCheckGracePeriodSeconds", 0)
        if service.get("loadBalancers") and grace < MIN_GRACE_PERIOD:
            message = (
                f"service {service.get('serviceName')}: healthCheckGracePeriodSeconds {grace} < "
                f"{MIN_GRACE_PERIOD}: the load balancer would fail the api-server while it starts"
            )
            yield path, message
    for document in inputs.of("target-group"):
        group = document.body
        for problem in _target_group_problems(group):
            yield document.path, f"target group {group.get('Name')}: {problem}"


def _target_group_problems(group: dict):
    # Missing values are ELBv2's defaults for an HTTP target group.
    interval = group.get("HealthCheckIntervalSeconds", 30)
    timeout = group.get("HealthCheckTimeoutSeconds", 5)
    if group.get("TargetType") != "ip":
        yield "TargetType must be ip for awsvpc tasks"
    path = group.get("HealthCheckPath", "/")
    if path not in AIRFLOW_HEALTH_PATHS:
        yield f"HealthCheckPath {path!r} is not one of Airflow's: {', '.join(AIRFLOW_HEALTH_PATHS)}"
    if interval > MAX_INTERVAL:
        yield f"HealthCheckIntervalSeconds {interval} > {MAX_INTERVAL}: a dead api-server stays in too long"
    if not MIN_TIMEOUT <= timeout < interval:
        yield f"HealthCheckTimeoutSeconds {timeout}: >= {MIN_TIMEOUT} (it reads the database), < the interval"
    if group.get("UnhealthyThresholdCount", 2) < MIN_UNHEALTHY:
        yield f"UnhealthyThresholdCount < {MIN_UNHEALTHY}: one slow answer takes a healthy api-server out"
