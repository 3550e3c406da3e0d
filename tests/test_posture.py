"""taskdefs posture against an account on the test AWS server (moto): the example stack of
infra/ passes; each fault, planted with boto3, is reported under its name."""

import re
import uuid
from pathlib import Path

import boto3
import pytest

from taskdefs import settings
from taskdefs.cli import main
from taskdefs.posture import FINDINGS
from tests.support import stack

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
REGION = "eu-west-1"


@pytest.fixture
def aws(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    return lambda service: boto3.client(service, endpoint_url=s3_server.endpoint, region_name=REGION)


@pytest.fixture
def deployment(aws, tmp_path):
    """The example stack and the settings `taskdefs settings --from-stack` writes for it."""
    outputs = stack.deploy(aws, REGION)
    path = tmp_path / "settings.toml"
    assert (
        main(["settings", "--from-stack", outputs["Name"], "--base", str(EXAMPLE), "--out", str(path)]) == 0
    )
    return outputs, path


def posture(path: Path, capsys) -> tuple[int, set[str], str]:
    capsys.readouterr()
    code = main(["posture", "--settings", str(path)])
    out = capsys.readouterr().out
    names = {line.split(":", 1)[0] for line in out.splitlines() if line.split(":", 1)[0] in FINDINGS}
    return code, names, out


def endpoint(ec2, outputs: dict, suffix: str) -> dict:
    """The stack VPC's endpoint whose service name ends in `suffix`."""
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])
    return next(e for e in found["VpcEndpoints"] if e["ServiceName"].endswith(suffix))


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_example_stack_passes_and_its_cost_is_estimated(deployment, capsys):
    outputs, path = deployment
    code, names, out = posture(path, capsys)
    assert (code, names) == (0, set()), out
    assert f"taskdefs posture: {outputs['VpcId']} in {REGION}: clean" in out
    # 7 interface endpoints (ecr.api, ecr.dkr, logs, secretsmanager, sts, kms, ecs) in 2 AZs.
    assert "7 interface endpoints in 14 endpoint-AZs x 730 h x $0.01 + 50 GB x $0.01" in out
    assert "= $102.70" in out and "2 NAT gateways x 730 h x $0.045 + 250 GB x $0.045 = $76.95" in out
    assert "break-even: the endpoints cost less above 1,043 GB a month" in out


def test_a_nat_gateway_and_its_default_route(aws, deployment, capsys):
    outputs, path = deployment
    ec2 = aws("ec2")
    subnet = outputs["TaskSubnetIds"].split(",")[0]
    nat = ec2.create_nat_gateway(SubnetId=subnet)["NatGateway"]["NatGatewayId"]
    table = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "RouteTables"
    ][0]
    ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"nat-gateway", "default-route"}), out
    assert f"nat-gateway: {nat}:" in out and f"sends 0.0.0.0/0 to {nat}" in out


def test_an_internet_gateway(aws, deployment, capsys):
    outputs, path = deployment
    ec2 = aws("ec2")
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=outputs["VpcId"])
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"internet-gateway"}), out
    assert f"internet-gateway: {gateway}: attached to {outputs['VpcId']}" in out


def test_a_missing_ecr_dkr_endpoint(aws, deployment, capsys):
    outputs, path = deployment
    ec2 = aws("ec2")
    dkr = endpoint(ec2, outputs, ".ecr.dkr")["VpcEndpointId"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[dkr])
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"missing-endpoint"}), out
    assert "missing-endpoint: ecr.dkr: no VPC endpoint, needed because" in out


def test_an_s3_gateway_endpoint_off_the_task_route_table(aws, deployment, capsys):
    outputs, path = deployment
    ec2 = aws("ec2")
    s3 = endpoint(ec2, outputs, ".s3")
    ec2.modify_vpc_endpoint(VpcEndpointId=s3["VpcEndpointId"], RemoveRouteTableIds=s3["RouteTableIds"])
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"missing-endpoint"}), out
    assert f"gateway endpoint {s3['VpcEndpointId']} is not on route table" in out


def test_private_dns_off(aws, deployment, capsys):
    outputs, path = deployment
    ec2 = aws("ec2")
    logs = endpoint(ec2, outputs, ".logs")
    # Replaced by one without private DNS (moto's modify_vpc_endpoint ignores PrivateDnsEnabled).
    ec2.delete_vpc_endpoints(VpcEndpointIds=[logs["VpcEndpointId"]])
    logs = ec2.create_vpc_endpoint(
        VpcId=outputs["VpcId"],
        ServiceName=logs["ServiceName"],
        VpcEndpointType="Interface",
        SubnetIds=logs["SubnetIds"],
        PrivateDnsEnabled=False,
    )["VpcEndpoint"]["VpcEndpointId"]
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"private-dns-off"}), out
    assert f"private-dns-off: {logs}: logs:" in out


def test_a_security_group_open_to_the_world(aws, deployment, capsys):
    outputs, path = deployment
    group = outputs["TaskSecurityGroupId"]
    aws("ec2").authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"open-security-group"}), out
    assert f"open-security-group: {group}: admits 0.0.0.0/0 on tcp 22" in out


def test_public_ips_on_a_subnet_an_interface_and_a_service(aws, deployment, capsys):
    outputs, path = deployment
    ec2, ecs = aws("ec2"), aws("ecs")
    subnet = outputs["TaskSubnetIds"].split(",")[0]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    interface = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    address = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=address["AllocationId"], NetworkInterfaceId=interface)
    family = f"public-{uuid.uuid4().hex[:8]}"
    ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": "app", "essential": True}],
    )
    ecs.create_service(
        cluster=outputs["ClusterName"],
        serviceName=family,
        taskDefinition=family,
        desiredCount=0,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [subnet],
                "securityGroups": [outputs["TaskSecurityGroupId"]],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"public-ip"}), out
    assert f"public-ip: {subnet}: gives every new network interface a public IP" in out
    assert f"public-ip: {interface}: has public IP {address['PublicIp']}" in out
    assert f"public-ip: {family}: a service of {outputs['ClusterName']} that asks for public IPs" in out


def test_unencrypted_stores(aws, deployment, capsys):
    outputs, path = deployment
    file_system = aws("efs").create_file_system(CreationToken=uuid.uuid4().hex, Encrypted=False)[
        "FileSystemId"
    ]
    database = aws("rds").create_db_instance(
        DBInstanceIdentifier=f"plain-{uuid.uuid4().hex[:8]}",
        Engine="postgres",
        DBInstanceClass="db.t4g.medium",
        MasterUsername="airflow",
        MasterUserPassword=uuid.uuid4().hex,
        AllocatedStorage=20,
    )["DBInstance"]
    redis = aws("elasticache").create_replication_group(
        ReplicationGroupId=f"plain-{uuid.uuid4().hex[:8]}",
        ReplicationGroupDescription="no TLS",
        Engine="redis",
        CacheNodeType="cache.t4g.small",
        NumCacheClusters=1,
    )["ReplicationGroup"]
    aws("s3").delete_bucket_encryption(Bucket=outputs["LogBucketName"])
    rewrite(path, outputs["DagFileSystemId"], file_system)
    rewrite(path, outputs["DatabaseHost"], database["Endpoint"]["Address"])
    rewrite(path, outputs["RedisHost"], redis["NodeGroups"][0]["PrimaryEndpoint"]["Address"])
    code, names, out = posture(path, capsys)
    assert (code, names) == (
        1,
        {"unencrypted-efs", "unencrypted-rds", "unencrypted-redis", "unencrypted-s3"},
    ), out
    assert f"unencrypted-efs: {file_system}:" in out
    assert f"unencrypted-rds: {database['DBInstanceIdentifier']}:" in out
    assert f"unencrypted-redis: {redis['ReplicationGroupId']}: not encrypted at rest nor in transit" in out
    assert f"unencrypted-s3: {outputs['LogBucketName']}: no default encryption" in out


def test_stores_the_settings_name_but_the_account_lacks(aws, deployment, capsys):
    outputs, path = deployment
    rewrite(path, outputs["DagFileSystemId"], "fs-0123456789abcdef0")
    rewrite(path, outputs["ClusterName"], "no-such-cluster")
    code, names, out = posture(path, capsys)
    assert (code, names) == (1, {"not-found"}), out
    assert "not-found: fs-0123456789abcdef0:" in out and "not-found: no-such-cluster:" in out


def test_bad_settings_and_bad_prices_are_one_line_errors(deployment, tmp_path, capsys):
    _, path = deployment
    rewrite(path, "vpc-", "vpx-")
    capsys.readouterr()
    assert main(["posture", "--settings", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "network.vpc_id: not a vpc id" in error
    with pytest.raises(SystemExit) as exited:
        main(["posture", "--settings", str(path), "--price-nat-gb", "-1"])
    assert exited.value.code == 2
    assert "must be >= 0" in capsys.readouterr().err


def test_the_readme_shows_the_posture_output_of_the_example(deployment, capsys):
    """README's block is this output, with the example's identifiers."""
    outputs, path = deployment
    _, _, out = posture(path, capsys)
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```text\n(taskdefs posture: .*?)```", readme, re.S)
    assert block, "README.md has no taskdefs posture block"
    shown = re.sub(r"vpc-[0-9a-f]+", outputs["VpcId"], block.group(1))
    assert shown == out
    assert settings.load(path)["network"]["vpc_endpoints"]  # the block came from these settings


def test_the_readme_cost_table_is_what_the_estimate_gives():
    from taskdefs.posture.cost import Estimate, Prices, Traffic

    readme = (REPO / "README.md").read_text()
    rows = re.findall(
        r"^\| ([\d,]+)[^|]* \| \$([\d.,]+) \| \$([\d.,]+) \| (\d+) % (more|less) \|$", readme, re.M
    )
    assert len(rows) == 4
    for s3_gb, endpoints, nat, percent, direction in rows:
        estimate = Estimate(7, 14, 2, Traffic(50, float(s3_gb.replace(",", ""))), Prices())
        assert f"{estimate.endpoints_monthly:,.2f}" == endpoints and f"{estimate.nat_monthly:,.2f}" == nat
        saving = 1 - estimate.endpoints_monthly / estimate.nat_monthly
        assert (round(abs(saving) * 100), "less" if saving >= 0 else "more") == (int(percent), direction)
