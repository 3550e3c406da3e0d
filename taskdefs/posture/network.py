"""The VPC's side of the posture: no way out but the endpoints, and no way in from anywhere."""

from collections.abc import Iterator

from taskdefs.documents import short_endpoint_name
from taskdefs.posture import Finding

ANYWHERE = ("0.0.0.0/0", "::/0")
LIVE_ENDPOINT_STATES = ("pendingacceptance", "pending", "available")


def nat_gateways(ec2, vpc_id: str) -> Iterator[Finding]:
    pages = ec2.get_paginator("describe_nat_gateways").paginate(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "state", "Values": ["pending", "available"]},
        ]
    )
    for page in pages:
        for gateway in page["NatGateways"]:
            yield Finding(
                "nat-gateway",
                gateway["NatGatewayId"],
                f"in subnet {gateway.get('SubnetId')}: billed hourly and per GB",
            )


def internet_gateways(ec2, vpc_id: str) -> Iterator[Finding]:
    found = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    for gateway in found["InternetGateways"]:
        yield Finding("internet-gateway", gateway["InternetGatewayId"], f"attached to {vpc_id}")


def task_route_tables(ec2, vpc_id: str, subnets: list[str]) -> dict[str, dict]:
    """Each task subnet's route table: its own association, else the VPC's main table."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    by_subnet = {
        association["SubnetId"]: table
        for table in tables
        for association in table.get("Associations", [])
        if association.get("SubnetId")
    }
    return {subnet: table for subnet in subnets if (table := by_subnet.get(subnet, main))}


def default_routes(route_tables: dict[str, dict]) -> Iterator[Finding]:
    for subnet, table in route_tables.items():
        for route in table.get("Routes", []):
            destination = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
            if destination in ANYWHERE:
                target = next(
                    (
                        value
                        for key, value in route.items()
                        if key.endswith("Id") and key != "DestinationPrefixListId"
                    ),
                    "a target",
                )
                yield Finding(
                    "default-route",
                    subnet,
                    f"route table {table['RouteTableId']} sends {destination} to {target}",
                )


def live_endpoints(ec2, vpc_id: str) -> list[dict]:
    pages = ec2.get_paginator("describe_vpc_endpoints").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    return [
        endpoint
        for page in pages
        for endpoint in page["VpcEndpoints"]
        if endpoint.get("State", "available").lower() in LIVE_ENDPOINT_STATES
    ]


def missing_endpoints(
    endpoints: list[dict], needed: dict[str, str], route_tables: dict[str, dict]
) -> Iterator[Finding]:
    present = {short_endpoint_name(endpoint["ServiceName"]): endpoint for endpoint in endpoints}
    for name in sorted(needed):
        endpoint = present.get(name)
        if endpoint is None:
            yield Finding("missing-endpoint", name, f"no VPC endpoint, needed because {needed[name]}")
        elif endpoint.get("VpcEndpointType") == "Gateway":
            for subnet, table in route_tables.items():
                if table["RouteTableId"] not in endpoint.get("RouteTableIds", []):
                    yield Finding(
                        "missing-endpoint",
                        name,
                        f"gateway endpoint {endpoint['VpcEndpointId']} is not on route table "
                        f"{table['RouteTableId']} of {subnet}",
                    )


def private_dns_off(endpoints: list[dict]) -> Iterator[Finding]:
    for endpoint in endpoints:
        if endpoint.get("VpcEndpointType") == "Interface" and not endpoint.get("PrivateDnsEnabled"):
            service = short_endpoint_name(endpoint["ServiceName"])
            yield Finding(
                "private-dns-off",
                endpoint["VpcEndpointId"],
                f"{service}: the SDKs resolve its public name, which has no route from here",
            )


def open_security_groups(ec2, vpc_id: str) -> Iterator[Finding]:
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    for page in pages:
        for group in page["SecurityGroups"]:
            for permission in group.get("IpPermissions", []):
                sources = [r.get("CidrIp") for r in permission.get("IpRanges", [])]
                sources += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges", [])]
                for source in sources:
                    if source in ANYWHERE:
                        yield Finding(
                            "open-security-group",
                            group["GroupId"],
                            f"admits {source} on {_ports(permission)}",
                        )


def public_ips(ec2, vpc_id: str) -> Iterator[Finding]:
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    for subnet in subnets:
        if subnet.get("MapPublicIpOnLaunch"):
            yield Finding("public-ip", subnet["SubnetId"], "gives every new network interface a public IP")
    pages = ec2.get_paginator("describe_network_interfaces").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    for page in pages:
        for interface in page["NetworkInterfaces"]:
            public = (interface.get("Association") or {}).get("PublicIp")
            if public:
                yield Finding("public-ip", interface["NetworkInterfaceId"], f"has public IP {public}")


def public_services(ecs, cluster: str) -> Iterator[Finding]:
    if not [c for c in ecs.describe_clusters(clusters=[cluster])["clusters"] if c.get("status") == "ACTIVE"]:
        yield Finding("not-found", cluster, "cluster names no active ECS cluster")
        return
    arns = [
        arn
        for page in ecs.get_paginator("list_services").paginate(cluster=cluster)
        for arn in page["serviceArns"]
    ]
    for start in range(0, len(arns), 10):  # describe_services takes at most 10
        for service in ecs.describe_services(cluster=cluster, services=arns[start : start + 10])["services"]:
            awsvpc = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
            if awsvpc.get("assignPublicIp") == "ENABLED":
                yield Finding(
                    "public-ip", service["serviceName"], f"a service of {cluster} that asks for public IPs"
                )


def _ports(permission: dict) -> str:
    if permission.get("IpProtocol") == "-1":
        return "every port"
    low, high = permission.get("FromPort"), permission.get("ToPort")
    return f"{permission['IpProtocol']} {low}" if low == high else f"{permission['IpProtocol']} {low}-{high}"
