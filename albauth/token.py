"""Verify the `x-amzn-oidc-data` token an ALB's authenticate-oidc action forwards.

The ALB signs it with ES256 and puts what identifies the signer in the JWT *header*:
`kid` (its public key), `signer` (the load balancer's ARN), `iss` and `client` (the IdP
and OIDC client of the rule) and `exp`. A plain JWT decode checks none of these header
fields, so each is checked here, after the signature. The ALB pads the base64url parts
with `=`, which the decoder accepts.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

ALGORITHM = "ES256"
# ALB key ids are UUID-like; anything else is refused before it is looked up or fetched.
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class TokenRejected(Exception):
    """The token is not one this deployment's load balancer signed and still valid (one line)."""


class UnknownKeyId(TokenRejected):
    def __init__(self, kid: str):
        super().__init__(f"unknown key id {kid!r}")
        self.kid = kid


@dataclass(frozen=True)
class Expected:
    """What the header must say: this load balancer, this IdP, this OIDC client."""

    alb_arn: str
    issuer: str
    client_id: str


def key_id(token: str) -> str:
    """The token's `kid`, validated, without trusting anything else in it yet."""
    header = _header(token)
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"alg {header.get('alg')!r} is not {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not KEY_ID.fullmatch(kid):
        raise TokenRejected(f"malformed key id {kid!r}")
    return kid


def verify(
    token: str,
    public_key: Callable[[str], EllipticCurvePublicKey | None],
    expected: Expected,
    now: float | None = None,
) -> dict[str, Any]:
    """The user's claims, once the token is proven to come from the expected load balancer."""
    kid = key_id(token)
    key = public_key(kid)
    if key is None:
        raise UnknownKeyId(kid)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"verify_aud": False, "verify_iss": False},
        )
    except jwt.InvalidSignatureError:
        raise TokenRejected(f"signature does not verify with key {kid!r}") from None
    except jwt.ExpiredSignatureError:
        raise TokenRejected("expired (payload exp)") from None
    except jwt.PyJWTError as error:
        raise TokenRejected(f"unreadable token: {error}") from None
    _check_header(_header(token), expected, time.time() if now is None else now)
    return claims


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRejected(f"unreadable token: {error}") from None


def _check_header(header: dict[str, Any], expected: Expected, now: float) -> None:
    wanted = {"signer": expected.alb_arn, "iss": expected.issuer, "client": expected.client_id}
    for field, want in wanted.items():
        if header.get(field) != want:
            raise TokenRejected(f"{field} {header.get(field)!r} is not {want!r}")
    exp = header.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenRejected("no exp in the token header")
    if exp <= now:
        raise TokenRejected(f"expired {now - exp:.0f} s ago (header exp)")
