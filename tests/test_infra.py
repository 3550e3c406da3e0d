"""infra/airflow-ecs.yaml: cfn-lint and checkov clean, deployed into moto's CloudFormation, and
its outputs turned into settings that render (tests/support/stack.py says what moto skips)."""

import ast
import ipaddress
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest
from moto.cloudformation.parsing import resource_class_from_type

from taskdefs import settings
from taskdefs.cli import main
from taskdefs.stack import OUTPUTS
from tests.support import stack

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
REGION = "eu-west-1"
CHECKOV = Path(os.environ.get("CHECKOV", REPO / ".venv" / "tools" / "checkov" / "bin" / "checkov"))
ALWAYS_ON = {"s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"}
INFORMATIONAL_OUTPUTS = {"LoadBalancerDnsName", "AlertTopicArn"}
MAX_CONDITION_VALUES = 5  # per listener rule, an ALB quota moto does not enforce
CLIENT_IP = "10.1.2.3"  # in the default ClientCidr
TASK_SUBNET_C_IP = "10.40.32.9"  # the third AZ's task subnet
LOGIN, NO_SESSION_401 = ("authenticate", "forward"), ("deny", "forward")
# (path, source address, what the listener does): its rules as the ALB applies them.
ROUTES = [
    ("/execution/task-instances/0190a1b2/run", "10.40.0.17", ("forward",)),
    ("/execution/", "10.40.16.200", ("forward",)),
    ("/execution/task-instances/0190a1b2/run", CLIENT_IP, ("403",)),
    ("/execution/task-instances/0190a1b2/run", "10.40.240.5", ("403",)),  # the ALB's own subnets
    ("/auth/login", CLIENT_IP, LOGIN),
    ("/api/v2/auth/login", CLIENT_IP, LOGIN),
    ("/api/v2/auth/logout", CLIENT_IP, LOGIN),
    ("/api/v2/dags", CLIENT_IP, NO_SESSION_401),
    ("/ui/config", CLIENT_IP, NO_SESSION_401),
    ("/api/v2/dags", "10.40.0.17", NO_SESSION_401),  # a task too: only the Execution API is open
    ("/", CLIENT_IP, LOGIN),
    ("/dags/example/grid", CLIENT_IP, LOGIN),
]


@pytest.fixture
def aws(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    return lambda service: boto3.client(service, endpoint_url=s3_server.endpoint, region_name=REGION)


def test_cfn_lint_reports_nothing():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(stack.TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_checkov_fails_nothing_and_every_skip_is_explained():
    assert CHECKOV.exists(), f"{CHECKOV} is missing: scripts/test installs checkov there"
    result = subprocess.run(
        [
            str(CHECKOV),
            "-f",
            str(stack.TEMPLATE),
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 50  # it really read the template
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the template explains its skips; checkov saw none"
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


def test_moto_skips_only_the_types_the_deploy_helper_stands_in_for():
    types = {resource["Type"] for resource in stack.template()["Resources"].values()}
    assert {t for t in types if resource_class_from_type(t) is None} == set(stack.NOT_CREATED)


def test_every_interface_endpoint_has_a_traffic_alarm_under_the_same_condition():
    resources = stack.template()["Resources"]
    interface = {
        name: resource.get("Condition")
        for name, resource in resources.items()
        if resource["Type"] == "AWS::EC2::VPCEndpoint"
        and resource["Properties"]["VpcEndpointType"] == "Interface"
    }
    alarmed = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            properties = resource["Properties"]
            assert (properties["Namespace"], properties["MetricName"]) == (
                "AWS/PrivateLinkEndpoints",
                "BytesProcessed",
            )
            dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
            assert set(dimensions) == {"Endpoint Type", "Service Name", "VPC Endpoint Id", "VPC Id"}
            alarmed[dimensions["VPC Endpoint Id"]["Ref"]] = resource.get("Condition")
    assert len(interface) == 9
    assert alarmed == interface


def test_outputs_are_the_settings_taskdefs_reads():
    assert set(stack.template()["Outputs"]) == set(OUTPUTS) | INFORMATIONAL_OUTPUTS


def test_the_default_stack_is_nat_free_in_moto(aws):
    outputs = stack.deploy(aws, REGION)
    ec2 = aws("ec2")
    vpc = outputs["VpcId"]
    by_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    # moto ignores the VPC's DNS properties; private DNS of the endpoints needs both.
    vpc_properties = stack.template()["Resources"]["Vpc"]["Properties"]
    assert vpc_properties["EnableDnsSupport"] is vpc_properties["EnableDnsHostnames"] is True
    assert ec2.describe_nat_gateways(Filters=by_vpc)["NatGateways"] == []
    assert (
        ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])[
            "InternetGateways"
        ]
        == []
    )
    subnets = ec2.describe_subnets(Filters=by_vpc)["Subnets"]
    assert len(subnets) == 4 and not any(subnet["MapPublicIpOnLaunch"] for subnet in subnets)
    routes = [
        route
        for table in ec2.describe_route_tables(Filters=by_vpc)["RouteTables"]
        for route in table["Routes"]
    ]
    assert {route.get("GatewayId") for route in routes if route.get("DestinationCidrBlock")} == {"local"}

    endpoints = {
        e["ServiceName"].split(".", 3)[3]: e
        for e in ec2.describe_vpc_endpoints(Filters=by_vpc)["VpcEndpoints"]
    }
    assert set(endpoints) == ALWAYS_ON | {"sts", "kms", "ecs"}
    assert set(outputs["VpcEndpoints"].split(",")) - {""} == set(endpoints)
    task_subnets = set(outputs["TaskSubnetIds"].split(","))
    for name, endpoint in endpoints.items():
        if name == "s3":
            assert endpoint["VpcEndpointType"] == "Gateway" and len(endpoint["RouteTableIds"]) == 1
            policy = ast.literal_eval(endpoint["PolicyDocument"])  # moto returns a Python literal, not JSON
            resources = [
                r
                for s in policy["Statement"]
                for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
            ]
            assert resources[0] == f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*"
            assert {r.split(":::")[1].split("/")[0] for r in resources[1:]} == {
                outputs["DagBucketName"],
                outputs["LogBucketName"],
            }
        else:
            assert endpoint["PrivateDnsEnabled"] and set(endpoint["SubnetIds"]) == task_subnets, name

    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(Filters=by_vpc)["SecurityGroups"]}
    open_ingress = [
        g["GroupId"]
        for g in groups.values()
        for p in g["IpPermissions"]
        for r in p.get("IpRanges", [])
        if r["CidrIp"] == "0.0.0.0/0"
    ]
    assert open_ingress == []

    database = aws("rds").describe_db_instances(DBInstanceIdentifier=outputs["Name"])["DBInstances"][0]
    assert database["StorageEncrypted"] and database["MultiAZ"] and not database["PubliclyAccessible"]
    assert database["Endpoint"]["Address"] == outputs["DatabaseHost"]
    efs = aws("efs")
    file_system = efs.describe_file_systems(FileSystemId=outputs["DagFileSystemId"])["FileSystems"][0]
    assert file_system["Encrypted"] and "AvailabilityZoneName" not in file_system
    assert len(efs.describe_mount_targets(FileSystemId=outputs["DagFileSystemId"])["MountTargets"]) == 2
    lifecycle = efs.describe_lifecycle_configuration(FileSystemId=outputs["DagFileSystemId"])[
        "LifecyclePolicies"
    ]
    assert {"TransitionToIA": "AFTER_30_DAYS"} in lifecycle
    access_point = efs.describe_access_points(AccessPointId=outputs["DagAccessPointId"])["AccessPoints"][0]
    assert access_point["PosixUser"] == {"Uid": 50000, "Gid": 0}
    s3 = aws("s3")
    for bucket in (outputs["DagBucketName"], outputs["LogBucketName"]):
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # moto's S3 applies only a bucket's encryption from a template: the rest is read from it.
    resources = stack.template()["Resources"]
    for bucket in ("DagBucket", "LogBucket"):
        properties = resources[bucket]["Properties"]
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert list(properties["PublicAccessBlockConfiguration"].values()) == [True] * 4
        assert properties["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"]

    cluster = aws("ecs").describe_clusters(clusters=[outputs["ClusterName"]])["clusters"][0]
    assert cluster["status"] == "ACTIVE"
    # moto keeps no capacity providers from a template.
    assert resources["Cluster"]["Properties"]["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    elbv2 = aws("elbv2")
    balancer = elbv2.describe_load_balancers(Names=[f"{outputs['Name']}-api"])["LoadBalancers"][0]
    assert balancer["Scheme"] == "internal"
    # moto keeps no load balancer attributes from a template; the idle timeout is a parameter.
    assert stack.template()["Parameters"]["IdleTimeoutSeconds"]["MinValue"] >= 120
    listener = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"][0]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    group = elbv2.describe_target_groups(TargetGroupArns=[outputs["ApiTargetGroupArn"]])["TargetGroups"][0]
    assert (group["TargetType"], group["HealthCheckPath"]) == ("ip", "/api/v2/monitor/health")
    log_group = aws("logs").describe_log_groups(logGroupNamePrefix=outputs["ContainerLogGroupName"])[
        "logGroups"
    ][0]
    assert log_group["retentionInDays"] == 30
    rule = aws("events").describe_rule(Name=f"{outputs['Name']}-nat-and-endpoint-changes")
    assert "CreateNatGateway" in json.loads(rule["EventPattern"])["detail"]["eventName"]
    targets = aws("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert [target["Arn"] for target in targets] == [outputs["AlertTopicArn"]]


def route(rules: list[dict], path: str, source: str) -> tuple[str, ...]:
    """The actions of the first rule that matches, in order: forward, a fixed response's status,
    or an authenticate-oidc action's OnUnauthenticatedRequest."""
    ordered = sorted(rules, key=lambda rule: float("inf") if rule["IsDefault"] else int(rule["Priority"]))
    rule = next(rule for rule in ordered if all(_matches(c, path, source) for c in rule["Conditions"]))
    return tuple(
        action["AuthenticateOidcConfig"]["OnUnauthenticatedRequest"]
        if action["Type"] == "authenticate-oidc"
        else action.get("FixedResponseConfig", {}).get("StatusCode", action["Type"])
        for action in rule["Actions"]
    )


def _matches(condition: dict, path: str, source: str) -> bool:
    if condition["Field"] == "path-pattern":  # * is any run of characters, ? one
        patterns = condition["PathPatternConfig"]["Values"]
        return any(
            re.fullmatch(re.escape(p).replace(r"\*", ".*").replace(r"\?", "."), path) for p in patterns
        )
    assert condition["Field"] == "source-ip", condition
    address = ipaddress.ip_address(source)
    return any(address in ipaddress.ip_network(cidr) for cidr in condition["SourceIpConfig"]["Values"])


@pytest.mark.parametrize("az_count", ["2", "3"])
def test_the_listener_logs_users_in_and_opens_the_execution_api_to_the_task_subnets_only(aws, az_count):
    outputs = stack.deploy(aws, REGION, AzCount=az_count)
    elbv2 = aws("elbv2")
    listener = elbv2.describe_listeners(LoadBalancerArn=outputs["LoadBalancerArn"])["Listeners"][0]
    rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    assert len(rules) == 5
    routes = [*ROUTES, ("/execution/", TASK_SUBNET_C_IP, ("forward",) if az_count == "3" else ("403",))]
    assert {(path, source): route(rules, path, source) for path, source, _ in routes} == {
        (path, source): expected for path, source, expected in routes
    }
    for rule in rules:
        values = [
            value
            for c in rule["Conditions"]
            for key in c
            if key.endswith("Config")
            for value in c[key]["Values"]
        ]
        assert len(values) <= MAX_CONDITION_VALUES, rule
        for action in rule["Actions"]:
            if action["Type"] == "forward":
                assert action["TargetGroupArn"] == outputs["ApiTargetGroupArn"]
            if action["Type"] == "authenticate-oidc":
                config = action["AuthenticateOidcConfig"]
                assert (config["Issuer"], config["ClientId"]) == (
                    outputs["OidcIssuer"],
                    outputs["OidcClientId"],
                )
                assert config["TokenEndpoint"] == stack.OIDC_PARAMETERS["OidcTokenEndpoint"]
                # CloudFormation resolves the reference when it deploys; moto keeps its text.
                assert config["ClientSecret"] == "{{resolve:secretsmanager:airflow/oidc-client-secret}}"
                assert (config["Scope"], int(config["SessionTimeout"])) == ("openid email profile", 28800)
    balancer = elbv2.describe_load_balancers(LoadBalancerArns=[outputs["LoadBalancerArn"]])["LoadBalancers"][
        0
    ]
    task_group = aws("ec2").describe_security_groups(GroupIds=[outputs["TaskSecurityGroupId"]])[
        "SecurityGroups"
    ][0]
    assert [
        (p["FromPort"], [pair["GroupId"] for pair in p["UserIdGroupPairs"]], p["IpRanges"])
        for p in task_group["IpPermissions"]
    ] == [(8080, balancer["SecurityGroups"], [])]  # the tasks still admit only the ALB


def test_the_load_balancer_reaches_the_idp_itself_and_runs_each_rules_actions_in_order():
    # Read from the template: moto keeps a template security group's default egress instead
    # of its own, and drops the Order of a listener's default forward.
    resources = stack.template()["Resources"]
    egress = resources["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert [(rule["FromPort"], rule["CidrIp"]) for rule in egress] == [
        (8080, {"Ref": "VpcCidr"}),
        (443, {"Ref": "IdpCidr"}),
    ]
    assert json.dumps(resources).count('{"Ref": "IdpCidr"}') == 1  # nothing else opens to the IdP
    for resource in resources.values():
        if resource["Type"].startswith("AWS::ElasticLoadBalancingV2::Listener"):
            properties = resource["Properties"]
            actions = properties.get("DefaultActions") or properties["Actions"]
            if len(actions) > 1:
                assert [action["Order"] for action in actions] == list(range(1, len(actions) + 1))


def test_three_azs_one_zone_efs_and_every_endpoint(aws):
    switches = (
        "AirflowAwsHooks",
        "TaskKmsAccess",
        "WorkerScaleInProtection",
        "CloudWatchMetricsApi",
        "EcsExec",
    )
    outputs = stack.deploy(
        aws, REGION, AzCount="3", EfsAvailability="OneZone", **dict.fromkeys(switches, "true")
    )
    ec2 = aws("ec2")
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])[
        "VpcEndpoints"
    ]
    names = {e["ServiceName"].split(".", 3)[3] for e in endpoints}
    assert names == ALWAYS_ON | {"sts", "kms", "ecs", "monitoring", "ssmmessages"}
    assert set(outputs["VpcEndpoints"].split(",")) == names
    assert all(len(e["SubnetIds"]) == 3 for e in endpoints if e["VpcEndpointType"] == "Interface")
    efs = aws("efs")
    assert (
        efs.describe_file_systems(FileSystemId=outputs["DagFileSystemId"])["FileSystems"][0][
            "AvailabilityZoneName"
        ]
        == f"{REGION}a"
    )
    assert len(efs.describe_mount_targets(FileSystemId=outputs["DagFileSystemId"])["MountTargets"]) == 1
    assert outputs["EcsExec"] == "true"


def test_settings_from_the_stack_render_with_every_endpoint_covered(aws, tmp_path, capsys):
    outputs = stack.deploy(aws, REGION)
    out = tmp_path / "settings.toml"
    assert main(["settings", "--from-stack", outputs["Name"], "--base", str(EXAMPLE), "--out", str(out)]) == 0
    written = settings.load(out)
    assert written["network"]["vpc_id"] == outputs["VpcId"]
    assert written["network"]["subnets"] == outputs["TaskSubnetIds"].split(",")
    assert set(written["network"]["vpc_endpoints"]) == ALWAYS_ON | {"sts", "kms", "ecs"}
    assert written["secrets"]["jwt_secret"] == outputs["JwtSecretArn"]
    assert written["dags"]["efs_access_point_id"] == outputs["DagAccessPointId"]
    assert written["images"] == tomllib.loads(EXAMPLE.read_text())["images"]  # from the base
    base_auth = tomllib.loads(EXAMPLE.read_text())["auth"]
    assert written["auth"] == {
        **base_auth,  # the group lists and the rest
        "alb_arn": outputs["LoadBalancerArn"],
        "issuer": outputs["OidcIssuer"],
        "client_id": outputs["OidcClientId"],
    }
    capsys.readouterr()
    assert main(["render", "--settings", str(out), "--out", str(tmp_path / "ecs")]) == 0, (
        capsys.readouterr().err
    )
    service = json.loads((tmp_path / "ecs" / "worker.service.json").read_text())
    assert service["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == written["network"]["subnets"]


def test_a_stack_without_an_endpoint_the_tasks_need_gives_settings_that_do_not_render(aws, tmp_path, capsys):
    outputs = stack.deploy(aws, REGION, WorkerScaleInProtection="false")
    out = tmp_path / "settings.toml"
    assert main(["settings", "--from-stack", outputs["Name"], "--base", str(EXAMPLE), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["render", "--settings", str(out), "--out", str(tmp_path / "ecs")]) == 2
    assert "no VPC endpoint for ecs" in capsys.readouterr().err
    assert not (tmp_path / "ecs").exists()


@pytest.mark.parametrize(
    ("stack_name", "base", "expected"),
    [
        ("no-such-stack", EXAMPLE, "stack no-such-stack:"),
        (None, "bad-base", "images.airflow: not an ECR image"),
    ],
)
def test_settings_from_stack_refuses_in_one_line_and_writes_nothing(
    aws, tmp_path, capsys, stack_name, base, expected
):
    if stack_name is None:
        stack_name = stack.deploy(aws, REGION)["Name"]
    if base == "bad-base":
        base = tmp_path / "base.toml"
        base.write_text(
            EXAMPLE.read_text().replace(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow-ecs/airflow", "docker.io/apache/airflow"
            )
        )
    out = tmp_path / "settings.toml"
    capsys.readouterr()
    assert main(["settings", "--from-stack", stack_name, "--base", str(base), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert expected in error and error.count("\n") <= 2
    assert list(tmp_path.glob("settings.toml*")) == [] and list(tmp_path.glob(".settings*")) == []
