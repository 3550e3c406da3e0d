"""The boto3 S3 client, with bounded timeouts and standard retries.

Endpoint and region come from the usual AWS settings (`AWS_REGION`,
`AWS_ENDPOINT_URL_S3`, ...), so VPC endpoints and emulators need no extra flags.
"""

from dataclasses import dataclass

import boto3
from botocore.config import Config


@dataclass(frozen=True)
class ClientSettings:
    timeout: float = 10.0  # seconds, for connect and for each read
    retries: int = 5  # total attempts per request, botocore "standard" mode
    pool: int = 16  # parallel connections


def make_client(settings: ClientSettings):
    config = Config(
        connect_timeout=settings.timeout,
        read_timeout=settings.timeout,
        retries={"mode": "standard", "total_max_attempts": settings.retries},
        max_pool_connections=settings.pool,
        # Conditional writes and reads are what keeps LATEST.json honest; plain
        # checksums on top only when the service asks for them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", config=config)
