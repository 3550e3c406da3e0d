"""ALB-style tokens for tests: a local P-256 key signs what the load balancer would."""

import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from albauth.fake_alb import kid_of, public_pem, sign

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
        exp = int(time.time()) + 60
        fields = {"typ": "JWT", "kid": self.kid, "alg": "ES256", "iss": ISSUER, "client": CLIENT_ID}
        fields |= {"signer": ALB_ARN, "exp": exp, **header}
        body = {"sub": "u-1", "email": "ada@example.com", "exp": exp, "iss": ISSUER, **(claims or {})}
        return sign(key or self.key, fields, body)
