"""ALB-style tokens for tests: a local P-256 key signs what the load balancer would."""

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from albauth.fake_alb import alb_token, kid_of, public_pem

ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/airflow-api/50dc6c495c0c9188"
ISSUER = "https://idp.example.com/oauth2"
CLIENT_ID = "airflow-ui"


@dataclass
class Alb:
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def kid(self) -> str:
        return kid_of(self.key)

    @property
    def pem(self) -> str:
        return public_pem(self.key)

    def token(self, claims: dict[str, Any] | None = None, key=None, **header: Any) -> str:
        """A token as this ALB signs it; `header` overrides fields, `key` signs instead."""
        return alb_token(
            key or self.key,
            kid=self.kid,
            signer=ALB_ARN,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            claims={"sub": "u-1", "email": "ada@example.com", **(claims or {})},
            lifetime=60,
            header=header,
        )
