"""What the VPC's way to the AWS APIs costs a month, next to the NAT gateways it replaces.

Endpoints: each interface endpoint is billed per AZ it is in, per hour, plus per GB it
carries; the S3 gateway endpoint is free. The NAT alternative: one NAT gateway per task AZ
(the usual highly available layout), per hour, plus per GB for all of the same traffic,
S3 included (with an S3 gateway endpoint beside the NATs, only the API traffic would be).
"""

from dataclasses import dataclass

HOURS_PER_MONTH = 730
# us-east-1 list prices, USD (other regions differ by a few cents: pass --price-*).
PRICE_SOURCES = (
    "interface endpoint $0.01 per AZ-hour and $0.01 per GB (first PB): https://aws.amazon.com/privatelink/pricing/",
    "NAT gateway $0.045 per hour and $0.045 per GB processed: https://aws.amazon.com/vpc/pricing/",
)


@dataclass(frozen=True)
class Prices:
    endpoint_hour: float = 0.01  # per interface endpoint per AZ
    endpoint_gb: float = 0.01
    nat_hour: float = 0.045  # per NAT gateway
    nat_gb: float = 0.045


@dataclass(frozen=True)
class Traffic:
    endpoint_gb: float  # a month, through the interface endpoints (API calls, logs, image manifests)
    s3_gb: float  # a month, to S3 (image layers, DAG releases, task logs)


@dataclass(frozen=True)
class Estimate:
    interface_endpoints: int
    endpoint_azs: int  # the interface endpoints' AZs, summed over the endpoints
    nat_gateways: int
    traffic: Traffic
    prices: Prices

    @property
    def endpoints_fixed(self) -> float:
        return self.endpoint_azs * HOURS_PER_MONTH * self.prices.endpoint_hour

    @property
    def nat_fixed(self) -> float:
        return self.nat_gateways * HOURS_PER_MONTH * self.prices.nat_hour

    @property
    def endpoints_monthly(self) -> float:
        return self.endpoints_fixed + self.traffic.endpoint_gb * self.prices.endpoint_gb

    @property
    def nat_monthly(self) -> float:
        return self.nat_fixed + (self.traffic.endpoint_gb + self.traffic.s3_gb) * self.prices.nat_gb

    def break_even_gb(self) -> float | None:
        """GB a month through the NAT above which the endpoints cost less (None: never, or always)."""
        fixed = self.endpoints_fixed - self.nat_fixed
        per_gb = self.prices.nat_gb - self.prices.endpoint_gb
        return fixed / per_gb if per_gb > 0 and fixed > 0 else None

    def lines(self) -> list[str]:
        t, p = self.traffic, self.prices
        saving = 1 - self.endpoints_monthly / self.nat_monthly if self.nat_monthly else 0.0
        cheaper = "less" if saving >= 0 else "more"
        lines = [
            f"a month: {HOURS_PER_MONTH} h, {t.endpoint_gb:g} GB to AWS APIs, {t.s3_gb:g} GB to S3",
            f"  endpoints: {self.interface_endpoints} interface endpoints in {self.endpoint_azs} endpoint-AZs"
            f" x {HOURS_PER_MONTH} h x ${p.endpoint_hour:g} + {t.endpoint_gb:g} GB x ${p.endpoint_gb:g}"
            f" (S3 gateway: free) = ${self.endpoints_monthly:,.2f}",
            f"  NAT alternative: {self.nat_gateways} NAT gateways x {HOURS_PER_MONTH} h x ${p.nat_hour:g}"
            f" + {t.endpoint_gb + t.s3_gb:g} GB x ${p.nat_gb:g} = ${self.nat_monthly:,.2f}",
            f"  the endpoints cost {abs(saving):.0%} {cheaper} than the NAT alternative",
        ]
        break_even = self.break_even_gb()
        if break_even is not None:
            lines.append(f"  break-even: the endpoints cost less above {break_even:,.0f} GB a month")
        lines += [f"  price: {source}" for source in PRICE_SOURCES]
        return lines


def estimate(
    ec2, endpoints: list[dict], task_subnets: list[str], traffic: Traffic, prices: Prices
) -> Estimate:
    interface = [endpoint for endpoint in endpoints if endpoint.get("VpcEndpointType") == "Interface"]
    subnet_ids = sorted(
        {subnet for endpoint in interface for subnet in endpoint.get("SubnetIds", [])} | set(task_subnets)
    )
    zones = (
        {
            subnet["SubnetId"]: subnet["AvailabilityZone"]
            for subnet in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
        }
        if subnet_ids
        else {}
    )
    endpoint_azs = sum(len({zones.get(s) for s in endpoint.get("SubnetIds", [])}) for endpoint in interface)
    task_azs = len({zones.get(subnet) for subnet in task_subnets})
    return Estimate(len(interface), endpoint_azs, task_azs, traffic, prices)
