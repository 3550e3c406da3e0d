"""The stores' side of the posture: everything the tasks keep is encrypted."""

from collections.abc import Iterator

from botocore.exceptions import ClientError

from taskdefs.posture import Finding


def efs(client, file_system_id: str) -> Iterator[Finding]:
    try:
        systems = client.describe_file_systems(FileSystemId=file_system_id)["FileSystems"]
    except ClientError as exc:
        if _code(exc) != "FileSystemNotFound":
            raise
        systems = []
    if not systems:
        yield Finding("not-found", file_system_id, "dags.efs_file_system_id names no file system")
    elif not systems[0].get("Encrypted"):
        yield Finding(
            "unencrypted-efs", file_system_id, "created without encryption at rest (set only at creation)"
        )


def rds(client, host: str) -> Iterator[Finding]:
    """The instance or Aurora cluster whose endpoint is database.host."""
    for page in client.get_paginator("describe_db_instances").paginate():
        for instance in page["DBInstances"]:
            if (instance.get("Endpoint") or {}).get("Address") == host:
                if not instance.get("StorageEncrypted"):
                    yield Finding(
                        "unencrypted-rds", instance["DBInstanceIdentifier"], "storage is not encrypted"
                    )
                return
    for page in client.get_paginator("describe_db_clusters").paginate():
        for cluster in page["DBClusters"]:
            if host in (cluster.get("Endpoint"), cluster.get("ReaderEndpoint")):
                if not cluster.get("StorageEncrypted"):
                    yield Finding(
                        "unencrypted-rds", cluster["DBClusterIdentifier"], "storage is not encrypted"
                    )
                return
    yield Finding("not-found", host, "database.host is the endpoint of no RDS instance or cluster here")


def redis(client, host: str) -> Iterator[Finding]:
    """The replication group whose primary or configuration endpoint is redis.host."""
    for page in client.get_paginator("describe_replication_groups").paginate():
        for group in page["ReplicationGroups"]:
            endpoints = {(group.get("ConfigurationEndpoint") or {}).get("Address")}
            endpoints |= {
                (node.get("PrimaryEndpoint") or {}).get("Address") for node in group.get("NodeGroups", [])
            }
            if host not in endpoints:
                continue
            unencrypted = [
                what
                for what, on in (
                    ("at rest", group.get("AtRestEncryptionEnabled")),
                    ("in transit", group.get("TransitEncryptionEnabled")),
                )
                if not on
            ]
            if unencrypted:
                yield Finding(
                    "unencrypted-redis",
                    group["ReplicationGroupId"],
                    f"not encrypted {' nor '.join(unencrypted)}",
                )
            return
    yield Finding("not-found", host, "redis.host is the endpoint of no ElastiCache replication group here")


def s3(client, bucket: str) -> Iterator[Finding]:
    try:
        rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if _code(exc) == "NoSuchBucket":
            yield Finding("not-found", bucket, "no such bucket")
            return
        if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    if not rules:
        yield Finding("unencrypted-s3", bucket, "no default encryption")


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
