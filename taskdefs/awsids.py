"""The shapes of AWS identifiers, and the regions botocore knows.

Each check returns None for a good value, or why it is not one (a phrase, no location).
"""

import re
from functools import cache

import botocore.session

ACCOUNT = re.compile(r"\d{12}")
RESOURCE_ID = {
    "vpc": re.compile(r"vpc-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
    "subnet": re.compile(r"subnet-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
    "sg": re.compile(r"sg-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
    "fs": re.compile(r"fs-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
    "fsap": re.compile(r"fsap-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
}
PARTITION = r"(?P<partition>aws(?:-cn|-us-gov)?)"
# A complete secret ARN ends in the 6 random characters Secrets Manager adds to the name;
# ECS `valueFrom` may add :json-key:version-stage:version-id.
SECRET_ARN = re.compile(
    rf"(?P<arn>arn:{PARTITION}:secretsmanager:(?P<region>[^:]*):(?P<account>[^:]*):secret:"
    r"[A-Za-z0-9/_+=.@!-]+-[A-Za-z0-9]{6})(?P<field>:[^:]*:[^:]*:[^:]*)?"
)
KMS_KEY_ARN = re.compile(
    rf"arn:{PARTITION}:kms:(?P<region>[^:]*):(?P<account>[^:]*):key/"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
)
TARGET_GROUP_ARN = re.compile(
    rf"arn:{PARTITION}:elasticloadbalancing:(?P<region>[^:]*):(?P<account>[^:]*):"
    r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}"
)
# Application load balancers only: authenticate-oidc is theirs.
LOAD_BALANCER_ARN = re.compile(
    rf"arn:{PARTITION}:elasticloadbalancing:(?P<region>[^:]*):(?P<account>[^:]*):"
    r"loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}"
)
ARN_KINDS = {
    "secret": SECRET_ARN,
    "kms-key": KMS_KEY_ARN,
    "target-group": TARGET_GROUP_ARN,
    "application-load-balancer": LOAD_BALANCER_ARN,
}
ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A tag pins an image when it names one release: three numbers, with an optional v before and
# anything after a - . or _ (3.1.8, v1.2.3, 3.1.8-1, 2026.12.04-abc1234). Every other tag
# floats: latest, stable, main, and partial versions such as 3 or 3.1.
FULL_VERSION_TAG = re.compile(r"[vV]?\d+\.\d+\.\d+(?:[-._]\w[\w.-]*)?")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@cache
def regions() -> frozenset[str]:
    """Every region of every partition that has ECS, from botocore's endpoint data."""
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ecs", partition)
    )


def region_problem(value: str) -> str | None:
    return None if value in regions() else "not an AWS region with ECS"


def resource_id_problem(kind: str, value: str) -> str | None:
    return None if RESOURCE_ID[kind].fullmatch(value) else f"not a {kind} id ({kind}-0123456789abcdef0)"


def arn_problem(kind: str, value: str, region: str, account: str) -> str | None:
    """A malformed ARN, or one of another region or account than the deployment's."""
    match = ARN_KINDS[kind].fullmatch(value)
    if not match:
        return f"not a complete {kind} ARN"
    return _place_problem(match, region, account)


def image_problem(value: str, region: str) -> str | None:
    """Only ECR in the deployment's region is reachable without a NAT; the image must be pinned."""
    match = ECR_IMAGE.fullmatch(value)
    if not match:
        return "not an ECR image (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG)"
    if region and match["region"] != region:
        return f"is in {match['region']}, not {region}: the tasks reach ECR only in their own region"
    return pinning_problem(match["tag"], match["digest"])


def pinning_problem(tag: str | None, digest: str | None) -> str | None:
    """None for an image pinned by a digest or a full version tag; else why it floats."""
    if digest and DIGEST.fullmatch(digest):
        return None
    if not tag:
        return "has no tag or digest"
    if tag == "latest":
        return "is tagged latest: pin a full version (1.2.3) or a digest"
    if not FULL_VERSION_TAG.fullmatch(tag):
        return f"is tagged {tag!r}, which floats: pin a full version (1.2.3) or a digest"
    return None


def tag_and_digest(image: str) -> tuple[str | None, str | None]:
    """The tag and digest of any image reference (a registry's :port is not a tag)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    return (last.split(":", 1)[1] if ":" in last else None), (digest or None)


def bucket_problem(value: str) -> str | None:
    if not BUCKET.fullmatch(value) or ".." in value:
        return "not an S3 bucket name"
    return None


def hostname_problem(value: str) -> str | None:
    return None if HOSTNAME.fullmatch(value) else "not a host name"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def dns_suffix(partition: str) -> str:
    return "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"


def repository_arn(image: str) -> str:
    match = ECR_IMAGE.fullmatch(image)
    assert match, image
    partition = partition_of(match["region"])
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"


def secret_resource_arn(value_from: str) -> str:
    """The secret's own ARN: a `valueFrom` without its :json-key:stage:version part."""
    match = SECRET_ARN.fullmatch(value_from)
    assert match, value_from
    return match["arn"]


def _place_problem(match: re.Match, region: str, account: str) -> str | None:
    """Compared only with a region and account that are themselves valid (else "")."""
    if region and match["partition"] != partition_of(region):
        return f"is in partition {match['partition']}, not {partition_of(region)} of {region}"
    if region and match["region"] != region:
        return f"is in region {match['region'] or '(none)'}, not {region}"
    if account and match["account"] != account:
        return f"is in account {match['account'] or '(none)'}, not {account}"
    return None
