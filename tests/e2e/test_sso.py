"""SSO end to end: headless Chromium logs into the real Airflow 3.1.8 UI through a fake ALB.

    Chromium --> fake ALB (albauth.fake_alb) --> api-server-sso (AlbAuthManager)
                   | authorization-code flow
                   v
                 oidc-provider-mock (the IdP)

The ALB's public key reaches the key store (the stack's S3) by the real `alb-keys fill`,
fetched from the fake ALB's stand-in for public-keys.auth.elb.REGION.amazonaws.com. The
api-server runs under strace, which records every connect(2) it makes: a login must make
no call out of the api-server except to its database. Screenshots go to
$TEST_ARTIFACTS (default build/test-artifacts).
"""

import http.client
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from albauth.fake_alb import LOCAL_SIGNER
from tests.e2e.stack import BIN, BUCKET, POSTGRES, REPO, free_port
from tests.support.alb import Alb

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
KEY_STORE = f"s3://{BUCKET}/alb-auth/keys.json"
CLIENT_ID = "airflow-e2e"
USERS = {
    "admin": {"sub": "admin", "email": "admin@example.com", "groups": ["airflow-admins"]},
    "viewer": {"sub": "viewer", "email": "viewer@example.com", "groups": ["airflow-viewers"]},
}
CONNECT = re.compile(r"^(\d+)\s+([\d.]+) connect\(\d+, \{sa_family=(AF_\w+), (.*?)\}")


class Sso:
    def __init__(self, stack):
        self.stack = stack
        self.idp_port, self.alb_port, self.api_port = free_port(), free_port(), free_port()
        self.idp = f"http://127.0.0.1:{self.idp_port}"
        self.alb = f"http://127.0.0.1:{self.alb_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.strace_log = stack.workdir / "api-server-sso.strace"

    def start(self) -> "Sso":
        users = [arg for claims in USERS.values() for arg in ("--user-claims", json.dumps(claims))]
        self.stack._spawn("idp", [str(BIN / "oidc-provider-mock"), "--port", str(self.idp_port), *users])
        self.stack.wait_for_url(f"{self.idp}/.well-known/openid-configuration", "idp", 60, step=0.5)
        self.stack._spawn("alb", [str(BIN / "python"), "-m", "albauth.fake_alb", *self._alb_args()])
        self.stack.wait_for_url(f"{self.alb}/__fake_alb/health", "alb", 60, step=0.5)
        self.kid = re.search(r"key id (\S+)", self.stack.log_tail("alb")).group(1)
        # what the CI job does with the internet: fetch the ALB's key, store it where Airflow reads
        fill = [*("fill", "--store", KEY_STORE, "--region", "us-east-1", "--kid", self.kid)]
        keys_url = f"{self.alb}/__fake_alb/keys/{{kid}}"
        subprocess.run(
            [str(BIN / "alb-keys"), *fill, "--keys-url", keys_url], env=self.stack.process_env(), check=True
        )
        api = [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]
        strace = ["strace", "-f", "-ttt", "-e", "trace=connect", "-o", str(self.strace_log)]
        self.stack._spawn("api-server-sso", [*strace, *api], self._api_env())
        self.stack.wait_for_url(f"{self.api}/api/v2/monitor/health", "api-server-sso", 180, step=0.5)
        return self

    def _alb_args(self) -> list[str]:
        return [
            *("--listen", f"127.0.0.1:{self.alb_port}", "--upstream", self.api),
            *("--issuer", self.idp, "--client-id", CLIENT_ID, "--client-secret", "e2e-secret"),
            *("--authorization-endpoint", f"{self.idp}/oauth2/authorize"),
            *("--token-endpoint", f"{self.idp}/oauth2/token", "--userinfo-endpoint", f"{self.idp}/userinfo"),
        ]

    def _api_env(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__AUTH_MANAGER": "albauth.manager.AlbAuthManager",
            "AIRFLOW__ALB_AUTH__KEY_STORE": KEY_STORE,
            "AIRFLOW__ALB_AUTH__ALB_ARN": LOCAL_SIGNER,
            "AIRFLOW__ALB_AUTH__ISSUER": self.idp,
            "AIRFLOW__ALB_AUTH__CLIENT_ID": CLIENT_ID,
            "AIRFLOW__ALB_AUTH__ADMIN_GROUPS": "airflow-admins",
            "AIRFLOW__ALB_AUTH__VIEWER_GROUPS": "airflow-viewers",
            "AIRFLOW__API__PORT": str(self.api_port),
        }

    def key_store_requests(self) -> int:
        """Requests the stack's S3 server has served for the key store (counted server-side)."""
        with urllib.request.urlopen(f"{self.stack.s3_endpoint}/_test/requests", timeout=10) as response:
            return sum("/alb-auth/" in path for _, path, _, _ in json.load(response)["requests"])

    def connects(self, start: float, end: float) -> list[tuple[str, str]]:
        """(family, address) of every connect(2) the api-server's processes made in [start, end]."""
        found = []
        for line in self.strace_log.read_text().splitlines():
            match = CONNECT.match(line)
            if match and start <= float(match[2]) <= end:
                family, rest = match[3], match[4]
                port = re.search(r"htons\((\d+)\)", rest)
                addr = re.search(r'inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"', rest)
                path = re.search(r'sun_path="([^"]*)"', rest)
                where = f"{addr[1]}:{port[1]}" if addr and port else (path[1] if path else rest)
                found.append((family, where))
        return found


@pytest.fixture(scope="module")
def sso(stack):
    pieces = Sso(stack).start()
    yield pieces
    for name in ("api-server-sso", "alb", "idp"):
        stack.stop_process(name)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def log_in(browser, sso: Sso, who: str):
    """Open the UI through the ALB, sign in on the IdP's page, wait for Airflow's UI."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{sso.alb}/")
    page.wait_for_url(f"{sso.idp}/oauth2/authorize*")  # the ALB sent the browser to the IdP
    page.fill("input[name=sub]", who)
    page.click("button[type=submit]:has-text('Authorize')")
    page.wait_for_url(re.compile(re.escape(sso.alb) + r"/(dags)?$"), timeout=60_000)
    page.get_by_role("link", name=re.compile("Dags", re.I)).first.wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")
    return context, page


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_chromium_logs_in_through_the_alb_and_the_role_follows_the_group(sso, browser, who):
    store_reads = sso.key_store_requests()
    started = time.time()
    context, page = log_in(browser, sso, who)
    finished = time.time()
    # the keys were read at start, and not again for the login, not even on a kept-alive connection
    assert store_reads > 0 and sso.key_store_requests() == store_reads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"sso-{who}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    token = next(c for c in context.cookies() if c["name"] == "_token")
    assert token["httpOnly"] is True
    me = page.request.get(f"{sso.alb}/ui/auth/menus").json()["authorized_menu_items"]
    pool = {"name": f"sso-{who}", "slots": 1}
    created = page.request.post(f"{sso.alb}/api/v2/pools", data=pool).status
    if who == "admin":
        assert "Connections" in me and created == 201
    else:
        assert "Connections" not in me and "Dags" in me and created == 403
        # A header the viewer's browser sends is replaced by the ALB with the viewer's own token.
        relogin = page.request.get(
            f"{sso.alb}/auth/login", headers={"x-amzn-oidc-data": forged_admin(sso)}, max_redirects=0
        )
        assert relogin.status == 303
        assert (
            "Connections" not in page.request.get(f"{sso.alb}/ui/auth/menus").json()["authorized_menu_items"]
        )

    # No call left the api-server during the login but to its database (acceptance 3).
    # The recorder sees this api-server's calls: at start it read the keys from S3.
    s3 = sso.stack.s3_endpoint.removeprefix("http://")
    assert ("AF_INET", s3) in sso.connects(0, started)
    calls = [call for call in sso.connects(started, finished) if call[0] in ("AF_INET", "AF_INET6")]
    assert {where for _, where in calls} <= {f"127.0.0.1:{POSTGRES['port']}"}, calls
    context.close()


def forged_admin(sso: Sso) -> str:
    """Admin claims under the fake ALB's kid, signer, issuer and client, signed by another key."""
    claims = {"sub": "admin", "groups": ["airflow-admins"]}
    return Alb().token(claims, kid=sso.kid, signer=LOCAL_SIGNER, iss=sso.idp, client=CLIENT_ID)


def test_a_forged_header_sent_straight_to_the_api_server_is_refused(sso):
    forged = forged_admin(sso)
    host = sso.api.removeprefix("http://")
    for path in ("/auth/login", "/api/v2/pools"):
        connection = http.client.HTTPConnection(host, timeout=30)
        connection.request("GET", path, headers={"x-amzn-oidc-data": forged})
        response = connection.getresponse()
        assert response.status == 401 and response.getheader("Set-Cookie") is None, path
    assert "signature does not verify" in sso.stack.log_tail("api-server-sso", 20_000)


def test_without_an_alb_session_the_api_gets_401_and_pages_go_to_the_idp(sso):
    connection = http.client.HTTPConnection(sso.alb.removeprefix("http://"), timeout=30)
    connection.request("GET", "/api/v2/dags", headers={"x-amzn-oidc-data": "client-sent"})
    assert connection.getresponse().status == 401  # deny: an XHR gets 401, not a redirect
    connection = http.client.HTTPConnection(sso.alb.removeprefix("http://"), timeout=30)
    connection.request("GET", "/dags")
    response = connection.getresponse()
    assert response.status == 302 and response.getheader("Location").startswith(f"{sso.idp}/oauth2/authorize")
