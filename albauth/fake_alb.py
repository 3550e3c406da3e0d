"""A local stand-in for an ALB listener with authenticate-oidc, for docker compose and tests.

It does what the ALB does for Airflow, and nothing else:
- runs the OIDC authorization-code flow against an IdP (`/oauth2/idpresponse` is its
  callback), then keeps the user's claims in a session behind the
  `AWSELBAuthSessionCookie-0` cookie;
- applies the listener rules of infra/airflow-ecs.yaml in order: /execution/* forwarded
  without authentication, /auth/* and /api/v2/auth/* authenticate, /api/v2/* and /ui/*
  deny (401) without a session, everything else authenticates;
- drops every x-amzn-oidc-* header a client sent and, on authenticated requests, adds
  x-amzn-oidc-data (an ES256 JWT with the ALB's header fields and `=`-padded base64url
  parts, as the ALB writes them), x-amzn-oidc-identity and x-amzn-oidc-accesstoken;
- serves its public key at /__fake_alb/keys/<kid>, as public-keys.auth.elb.REGION.amazonaws.com
  does for a real ALB, so `alb-keys fill --keys-url` can fetch it.
Its signing key is made at start; the kid is derived from the key.
"""

import argparse
import base64
import hashlib
import http.client
import json
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SESSION_COOKIE = "AWSELBAuthSessionCookie-0"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}
# (path prefixes, action), first match wins; the default authenticates (infra/airflow-ecs.yaml).
RULES: list[tuple[tuple[str, ...], str]] = [
    (("/execution/",), "forward"),
    (("/auth/", "/api/v2/auth/"), "authenticate"),
    (("/api/v2/", "/ui/"), "deny"),
]
TOKEN_LIFETIME = 120
LOCAL_SIGNER = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/local/0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()  # keeps the '=' padding, as the ALB does


def sign(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An ALB-style token: ES256 over `=`-padded base64url header and payload."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def alb_token(
    key: ec.EllipticCurvePrivateKey,
    *,
    kid: str,
    signer: str,
    issuer: str,
    client_id: str,
    claims: dict[str, Any],
    lifetime: int = TOKEN_LIFETIME,
    header: dict[str, Any] | None = None,
) -> str:
    """The x-amzn-oidc-data an ALB sends: who signed it in the header, the user's claims below.
    `header` overrides header fields (tests use it to make a token some other ALB would send)."""
    exp = int(time.time()) + lifetime
    fields = {"typ": "JWT", "kid": kid, "alg": "ES256", "iss": issuer, "client": client_id, "signer": signer}
    return sign(key, {**fields, "exp": exp, **(header or {})}, {**claims, "exp": exp, "iss": issuer})


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def kid_of(key: ec.EllipticCurvePrivateKey) -> str:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    return "fake-" + hashlib.sha256(der).hexdigest()[:24]


@dataclass
class Oidc:
    """The listener rule's AuthenticateOidcConfig, as the ALB takes it."""

    issuer: str
    authorization_endpoint: str  # the browser goes here
    token_endpoint: str  # the ALB calls these two itself
    userinfo_endpoint: str
    client_id: str
    client_secret: str
    scope: str = "openid email profile"


@dataclass
class FakeAlb:
    oidc: Oidc
    upstream: str
    signer: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def kid(self) -> str:
        return kid_of(self.key)

    def token_for(self, session: dict[str, Any]) -> str:
        return alb_token(
            self.key,
            kid=self.kid,
            signer=self.signer,
            issuer=self.oidc.issuer,
            client_id=self.oidc.client_id,
            claims=session["claims"],
        )

    def login_redirect(self, original: str, callback: str) -> str:
        state = secrets.token_urlsafe(16)
        with self.lock:
            self.pending[state] = original
        query = {
            "response_type": "code",
            "client_id": self.oidc.client_id,
            "redirect_uri": callback,
            "scope": self.oidc.scope,
            "state": state,
        }
        return f"{self.oidc.authorization_endpoint}?{urllib.parse.urlencode(query)}"

    def finish_login(self, code: str, state: str, callback: str) -> tuple[str, str]:
        """Exchange the code, read the user's claims; (session id, where the user was going)."""
        with self.lock:
            original = self.pending.pop(state, None)
        if original is None:
            raise ValueError("unknown or used state")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback}
        basic = base64.b64encode(f"{self.oidc.client_id}:{self.oidc.client_secret}".encode()).decode()
        tokens = _call(
            self.oidc.token_endpoint,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        access_token = tokens["access_token"]
        claims = _call(self.oidc.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"})
        session_id = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[session_id] = {"claims": claims, "access_token": access_token}
        return session_id, original


def _call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def action_for(path: str) -> str:
    for prefixes, action in RULES:
        if path.startswith(prefixes):
            return action
    return "authenticate"


class Handler(BaseHTTPRequestHandler):
    alb: FakeAlb
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.handle_any()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def handle_any(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/oauth2/idpresponse":
            return self.idp_response()
        if path.startswith("/__fake_alb/keys/"):
            known = path.rsplit("/", 1)[1] == self.alb.kid
            return self.reply(200 if known else 404, public_pem(self.alb.key) if known else "no such key\n")
        if path == "/__fake_alb/health":
            return self.reply(200, "ok\n")
        session = self.session()
        action = action_for(path)
        if action == "deny" and session is None:
            return self.reply(401, "401 Authorization Required\n")
        if action == "authenticate" and session is None:
            original = f"{self.origin()}{self.path}"
            return self.redirect(self.alb.login_redirect(original, self.callback()))
        self.forward(session if action != "forward" else None)

    def idp_response(self) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        try:
            code, state = query["code"], query.get("state", "")
            session_id, original = self.alb.finish_login(code, state, self.callback())
        except (KeyError, ValueError, OSError) as error:
            return self.reply(401, f"authentication failed: {error}\n")
        self.redirect(original, cookie=f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax")

    def session(self) -> dict[str, Any] | None:
        cookies = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookies.get(SESSION_COOKIE)
        return self.alb.sessions.get(morsel.value) if morsel else None

    def forward(self, session: dict[str, Any] | None) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP and not name.lower().startswith("x-amzn-oidc-")
        }
        headers.update({"X-Forwarded-For": self.client_address[0], "X-Forwarded-Proto": "http"})
        if session is not None:
            headers["x-amzn-oidc-data"] = self.alb.token_for(session)
            headers["x-amzn-oidc-identity"] = str(session["claims"].get("sub", ""))
            headers["x-amzn-oidc-accesstoken"] = session["access_token"]
        target = urllib.parse.urlsplit(self.alb.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as error:
            return self.reply(502, f"502 Bad Gateway: {error}\n")
        finally:
            connection.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def origin(self) -> str:
        return f"http://{self.headers.get('Host', 'localhost')}"

    def callback(self) -> str:
        return f"{self.origin()}/oauth2/idpresponse"

    def redirect(self, location: str, cookie: str | None = None) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"fake-alb {self.address_string()} {format % args}\n")


def serve(alb: FakeAlb, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"alb": alb})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m albauth.fake_alb", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to serve on")
    parser.add_argument("--upstream", required=True, help="the api-server, e.g. http://api-server:8080")
    parser.add_argument("--signer", default=LOCAL_SIGNER, help="the load balancer ARN the tokens name")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--authorization-endpoint", required=True, help="as the browser reaches it")
    parser.add_argument("--token-endpoint", required=True, help="as this proxy reaches it")
    parser.add_argument("--userinfo-endpoint", required=True, help="as this proxy reaches it")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--scope", default="openid email profile")
    parser.add_argument("--publish-key", metavar="STORE", help="also put the public key in this key store")
    args = parser.parse_args(argv)
    oidc = Oidc(
        args.issuer,
        args.authorization_endpoint,
        args.token_endpoint,
        args.userinfo_endpoint,
        args.client_id,
        args.client_secret,
        args.scope,
    )
    alb = FakeAlb(oidc=oidc, upstream=args.upstream, signer=args.signer)
    if args.publish_key:
        from albauth.keystore import KeyStore, Location

        store = KeyStore(Location.parse(args.publish_key))
        store.write({**store.read(), alb.kid: public_pem(alb.key)})
    host, _, port = args.listen.rpartition(":")
    server = serve(alb, host or "0.0.0.0", int(port))
    print(f"fake ALB on {args.listen} -> {args.upstream}, key id {alb.kid}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
