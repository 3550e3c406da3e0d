"""A live account checked against the NAT-free design: named findings, and what the network costs.

`taskdefs posture --settings FILE` reads the account with boto3 (read-only calls) and
checks the VPC, subnets, endpoints and stores the settings name. The endpoints it requires
are the ones `taskdefs lint` requires of the task definitions rendered from those settings.
"""

from dataclasses import dataclass

# Every finding's name, and what it means.
FINDINGS = {
    "nat-gateway": "a NAT gateway in the VPC",
    "internet-gateway": "an internet gateway attached to the VPC",
    "default-route": "a route to 0.0.0.0/0 or ::/0 on a task subnet",
    "missing-endpoint": "an AWS service the rendered tasks call has no VPC endpoint for the task subnets",
    "private-dns-off": "an interface endpoint without private DNS: the SDKs resolve the public name",
    "open-security-group": "a security group of the VPC admits 0.0.0.0/0 or ::/0 inbound",
    "public-ip": "a subnet that gives public IPs, a network interface with one, or a service asking for one",
    "unencrypted-efs": "the DAG file system is not encrypted at rest",
    "unencrypted-rds": "the metadata database is not encrypted at rest",
    "unencrypted-redis": "the broker is not encrypted at rest and in transit",
    "unencrypted-s3": "a DAG or log bucket has no default encryption",
    "not-found": "a resource the settings name does not exist, so nothing vouches for it",
}


@dataclass(frozen=True)
class Finding:
    name: str
    resource: str
    message: str

    def __post_init__(self):
        assert self.name in FINDINGS, self.name

    def __str__(self) -> str:
        return f"{self.name}: {self.resource}: {self.message}"
