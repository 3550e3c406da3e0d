"""Deploy infra/airflow-ecs.yaml into moto's CloudFormation, on the test AWS server.

moto creates most of the template's resource types from the template itself; the types it
skips, and what stands in for each here, are NOT_CREATED. Where the template's outputs read
a skipped resource, the test creates that resource with boto3 first and writes its
identifier into the output, so that `taskdefs settings --from-stack` and `taskdefs posture`
see a complete deployment. moto's other gaps, each worked around in deploy():
- it does not split list parameters' defaults: every list parameter is passed;
- its Ref of an AWS::RDS::DBParameterGroup is not the group's name: the instance is
  created without its parameter group (the group itself is created);
- it has no MasterUserSecret attribute on AWS::RDS::DBInstance, nor a Ref or GetAtt for
  AWS::EFS::AccessPoint: the RDS-managed secret is created with boto3, and the access
  point's id is written into its output by an update of the stack;
- its AWS::EC2::SubnetRouteTableAssociation records no association: deploy() makes each
  one the template declares with boto3.
And gaps tests/test_infra.py checks around: a security group keeps the default allow-all
egress instead of the template's, and the listener's default forward loses its Order (both are
read from the template); the client secret's {{resolve:secretsmanager:...}} reference stays
text, so the secret need not exist; ALB quotas (5 condition values per rule) are not
enforced, so the test counts them.
"""

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path

from cfnlint.decode import decode_str

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "airflow-ecs.yaml"

# Resource types moto's CloudFormation skips, and what the tests do instead.
NOT_CREATED = {
    "AWS::SecretsManager::Secret": "created with boto3; their ARNs go into the outputs",
    "AWS::ElastiCache::SubnetGroup": "not needed by the boto3-created replication group",
    "AWS::ElastiCache::ReplicationGroup": "created with boto3, encrypted: its endpoint is RedisHost",
    "AWS::S3::BucketPolicy": "not exercised: cfn-lint and checkov check the TLS-only policies",
    "AWS::SNS::TopicPolicy": "not exercised: cfn-lint checks it",
    "AWS::SNS::Subscription": "not exercised (created only with AlertEmail)",
    "AWS::CloudWatch::Alarm": "not exercised in moto: test_infra checks each endpoint has one",
}
LIST_PARAMETERS = {
    "TaskSubnetCidrs": "10.40.0.0/20,10.40.16.0/20,10.40.32.0/20",
    "LoadBalancerSubnetCidrs": "10.40.240.0/24,10.40.241.0/24,10.40.242.0/24",
}
# The IdP of the listener's authenticate-oidc actions.
OIDC_PARAMETERS = {
    "OidcIssuer": "https://login.example.com/oauth2/default",
    "OidcAuthorizationEndpoint": "https://login.example.com/oauth2/default/v1/authorize",
    "OidcTokenEndpoint": "https://login.example.com/oauth2/default/v1/token",
    "OidcUserInfoEndpoint": "https://login.example.com/oauth2/default/v1/userinfo",
    "OidcClientId": "0oa1airflow2example3",
    "OidcClientSecretName": "airflow/oidc-client-secret",
}


def template() -> dict:
    decoded, problems = decode_str(TEMPLATE.read_text())
    assert not problems, problems
    return json.loads(json.dumps(decoded))


def deploy(client: Callable, region: str, **parameters: str) -> dict[str, str]:
    """Create a stack of the template (a unique Name unless given); return its outputs."""
    name = parameters.setdefault("Name", f"af{uuid.uuid4().hex[:10]}")
    azs = ",".join(f"{region}{zone}" for zone in "abc")
    acm = client("acm")
    domain = f"{name}.internal.example.com"
    parameters = {
        "AvailabilityZones": azs,
        "CertificateArn": acm.request_certificate(DomainName=domain)["CertificateArn"],
        "ApiDomainName": domain,
        **LIST_PARAMETERS,
        **OIDC_PARAMETERS,
        **parameters,
    }
    body = template()
    body["Resources"]["Database"]["Properties"].pop("DBParameterGroupName")
    body["Outputs"].update(_stand_ins(client, name))
    access_point_output = body["Outputs"].pop("DagAccessPointId")
    cloudformation = client("cloudformation")
    arguments = {
        "StackName": name,
        "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    }
    cloudformation.create_stack(TemplateBody=json.dumps(body), **arguments)
    file_system = _output(cloudformation, name, "DagFileSystemId")
    access_points = client("efs").describe_access_points(FileSystemId=file_system)["AccessPoints"]
    assert len(access_points) == 1, access_points
    updated = copy.deepcopy(body)
    updated["Outputs"]["DagAccessPointId"] = {
        **access_point_output,
        "Value": access_points[0]["AccessPointId"],
    }
    cloudformation.update_stack(TemplateBody=json.dumps(updated), **arguments)
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE", stack.get("StackStatusReason")
    _associate_route_tables(client, body, name)
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def _stand_ins(client: Callable, name: str) -> dict[str, dict]:
    """Outputs whose resources moto does not create from the template, with boto3-made values."""
    secrets = client("secretsmanager")

    def secret(secret_name: str) -> str:
        return secrets.create_secret(Name=secret_name, SecretString=uuid.uuid4().hex)["ARN"]

    redis = client("elasticache").create_replication_group(
        ReplicationGroupId=name,
        ReplicationGroupDescription=f"{name} Celery broker",
        Engine="redis",
        CacheNodeType="cache.t4g.small",
        NumCacheClusters=2,
        AutomaticFailoverEnabled=True,
        TransitEncryptionEnabled=True,
        AtRestEncryptionEnabled=True,
        AuthToken=uuid.uuid4().hex,
    )["ReplicationGroup"]
    primary = redis["NodeGroups"][0]["PrimaryEndpoint"]
    values = {
        "DatabaseSecretArn": secret(f"rds!db-{uuid.uuid4()}"),
        "RedisHost": primary["Address"],
        "RedisPort": str(primary["Port"]),
        "RedisAuthSecretArn": secret(f"{name}/redis-auth"),
        "JwtSecretArn": secret(f"{name}/jwt-secret"),
        "FernetKeySecretArn": secret(f"{name}/fernet-key"),
        "ApiSecretKeyArn": secret(f"{name}/api-secret-key"),
    }
    return {key: {"Value": value} for key, value in values.items()}


def _associate_route_tables(client: Callable, body: dict, name: str) -> None:
    summaries = client("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]
    physical = {summary["LogicalResourceId"]: summary["PhysicalResourceId"] for summary in summaries}
    ec2 = client("ec2")
    for logical, resource in body["Resources"].items():
        if resource["Type"] == "AWS::EC2::SubnetRouteTableAssociation" and logical in physical:
            properties = resource["Properties"]
            ec2.associate_route_table(
                SubnetId=physical[properties["SubnetId"]["Ref"]],
                RouteTableId=physical[properties["RouteTableId"]["Ref"]],
            )


def _output(cloudformation, stack: str, key: str) -> str:
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return next(output["OutputValue"] for output in outputs if output["OutputKey"] == key)
