"""Run every posture check for one deployment's settings."""

from collections.abc import Callable

import boto3
import botocore.exceptions

from taskdefs import TaskdefsError, endpoints, render
from taskdefs.posture import Finding, cost, network, storage
from taskdefs.ruleset import Inputs


def needed_endpoints(settings: dict) -> dict[str, str]:
    """What `lint` requires of the task definitions rendered from these settings."""
    return endpoints.needed(Inputs(render.render(settings).documents()))


def run(
    settings: dict, traffic: cost.Traffic, prices: cost.Prices, client: Callable | None = None
) -> tuple[list[Finding], cost.Estimate | None]:
    client = client or _clients(settings["region"])
    ec2, vpc_id = client("ec2"), settings["network"]["vpc_id"]
    subnets = settings["network"]["subnets"]
    try:
        if not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]:
            return [Finding("not-found", vpc_id, "network.vpc_id names no VPC")], None
        route_tables = network.task_route_tables(ec2, vpc_id, subnets)
        live = network.live_endpoints(ec2, vpc_id)
        findings = [
            *network.nat_gateways(ec2, vpc_id),
            *network.internet_gateways(ec2, vpc_id),
            *network.default_routes(route_tables),
            *network.missing_endpoints(live, needed_endpoints(settings), route_tables),
            *network.private_dns_off(live),
            *network.open_security_groups(ec2, vpc_id),
            *network.public_ips(ec2, vpc_id),
            *network.public_services(client("ecs"), settings["cluster"]),
            *_stores(client, settings),
        ]
        estimate = cost.estimate(ec2, live, subnets, traffic, prices)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise TaskdefsError(f"cannot read the account: {error.get('Code')}: {error.get('Message')}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise TaskdefsError(f"cannot read the account: {exc}") from None
    return findings, estimate


def _stores(client: Callable, settings: dict) -> list[Finding]:
    findings = []
    if settings["dags"]["volume"] == "efs":
        findings += storage.efs(client("efs"), settings["dags"]["efs_file_system_id"])
    findings += storage.rds(client("rds"), settings["database"]["host"])
    findings += storage.redis(client("elasticache"), settings["redis"]["host"])
    for bucket in dict.fromkeys((settings["dags"]["bucket"], settings["logs"]["bucket"])):
        findings += storage.s3(client("s3"), bucket)
    return findings


def _clients(region: str) -> Callable:
    session = boto3.session.Session(region_name=region)
    return lambda service: session.client(service)
