"""The ALB auth manager inside a real Airflow 3.1.8 api-server: tokens signed by a local
P-256 key, the keys in a real S3 server, requests over HTTP on loopback."""

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from albauth.keystore import KeyStore, Location
from tests.e2e.stack import free_port
from tests.support.alb import ALB_ARN, CLIENT_ID, ISSUER, Alb

BIN = Path(sys.executable).parent
BUCKET = "alb-auth-login"
GROUPS = {"admin": ["airflow-admins"], "viewer": ["everyone"], "user": ["data-eng", "everyone"]}


class ApiServer:
    def __init__(self, url: str, log: Path, alb: Alb, store: KeyStore, env: dict[str, str]):
        self.url, self.log, self.alb, self.store, self.env = url, log, alb, store, env
        self.host = url.removeprefix("http://")

    def get(self, path: str, headers: dict | None = None, method: str = "GET", body: dict | None = None):
        connection = http.client.HTTPConnection(self.host, timeout=30)
        data = json.dumps(body) if body is not None else None
        head = {**(headers or {}), **({"Content-Type": "application/json"} if body is not None else {})}
        connection.request(method, path, body=data, headers=head)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        if cookies := response.msg.get_all("Set-Cookie"):
            headers["set-cookie"] = "\n".join(cookies)
        return response.status, headers, response.read().decode()

    def login(self, signed: str, next_url: str | None = None):
        path = "/auth/login" + (f"?next={quote(next_url, safe='')}" if next_url is not None else "")
        return self.get(path, {"x-amzn-oidc-data": signed})

    def cookie_of(self, groups: list[str]) -> str:
        status, headers, body = self.login(self.alb.token({"groups": groups}))
        assert status == 303, body
        return headers["set-cookie"].split(";")[0]


@pytest.fixture(scope="module")
def api(s3_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("albauth-api")
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    alb = Alb()
    store = KeyStore(Location.parse(f"s3://{BUCKET}/alb-auth/keys.json"))
    store.write({alb.kid: alb.pem})
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(work),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "albauth.manager.AlbAuthManager",
        "AIRFLOW__API_AUTH__JWT_SECRET": "albauth-login-test-secret-0123456789abcdef",
        "AIRFLOW__API__SECRET_KEY": "albauth-login-test",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__ALB_AUTH__KEY_STORE": store.location.url,
        "AIRFLOW__ALB_AUTH__ALB_ARN": ALB_ARN,
        "AIRFLOW__ALB_AUTH__ISSUER": ISSUER,
        "AIRFLOW__ALB_AUTH__CLIENT_ID": CLIENT_ID,
        "AIRFLOW__ALB_AUTH__ADMIN_GROUPS": "airflow-admins",
        "AIRFLOW__ALB_AUTH__USER_GROUPS": "data-eng",
        "AIRFLOW__ALB_AUTH__VIEWER_GROUPS": "everyone",
    }
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    log = work / "api-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the api-server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield ApiServer(url, log, alb, store, env)
    os.killpg(process.pid, 15)
    process.wait(30)


def refused_lines(api: ApiServer) -> list[str]:
    return [line for line in api.log.read_text().splitlines() if "ALB login refused" in line]


def test_a_valid_login_sets_airflows_httponly_token_and_goes_to_next(api):
    status, headers, _ = api.login(api.alb.token({"groups": ["airflow-admins"]}), f"{api.url}/dags?tab=runs")
    assert status == 303
    assert headers["location"] == f"{api.url}/dags?tab=runs"
    cookie = headers["set-cookie"]
    assert cookie.startswith("_token=") and "HttpOnly" in cookie and "Path=/" in cookie
    token = cookie.split(";")[0]
    status, _, body = api.get("/api/v2/pools", {"Cookie": token})
    assert status == 200 and "default_pool" in body


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"signer": ALB_ARN.replace("50dc6c", "ffffff")}, "signer"),
        ({"exp": int(time.time()) - 5}, "expired"),
        ({"client": "another-client"}, "client"),
    ],
    ids=["wrong-signer", "expired-header-exp", "wrong-client"],
)
def test_a_token_from_the_wrong_alb_or_too_old_gets_401_and_no_cookie(api, header, reason):
    status, headers, body = api.login(api.alb.token({"groups": ["airflow-admins"]}, **header))
    assert status == 401 and "set-cookie" not in headers
    assert reason in body and reason in refused_lines(api)[-1]


def test_a_forged_signature_sent_straight_to_the_api_server_is_refused(api):
    forger = Alb()  # a key of the attacker's own, under the real kid
    forged = api.alb.token({"groups": ["airflow-admins"]}, key=forger.key)
    status, headers, body = api.login(forged)
    assert (status, "set-cookie" in headers) == (401, False)
    assert "signature does not verify" in body
    assert api.get("/api/v2/pools", {"x-amzn-oidc-data": forged})[0] == 401  # the header alone is nothing


def test_an_unknown_kid_is_refused_with_one_log_line_and_a_wanted_marker(api):
    stranger = Alb()
    before = len(refused_lines(api))
    status, headers, body = api.login(stranger.token({"groups": ["airflow-admins"]}))
    assert status == 401 and "set-cookie" not in headers and "unknown key id" in body
    new = refused_lines(api)[before:]
    assert len(new) == 1 and stranger.kid in new[0] and "alb-keys fill" in new[0]
    assert api.store.wanted() == [stranger.kid]
    api.store.unwant(stranger.kid)


@pytest.mark.parametrize("claims", [{}, {"groups": ["payroll"]}], ids=["no-groups-claim", "unmapped-group"])
def test_a_user_without_a_mapped_group_gets_403_and_no_cookie(api, claims):
    status, headers, body = api.login(api.alb.token(claims))
    assert status == 403 and "set-cookie" not in headers
    assert "in no group mapped to a role" in body


def test_no_header_gets_401(api):
    status, headers, _ = api.get("/auth/login")
    assert status == 401 and "set-cookie" not in headers


def test_a_viewer_reads_but_gets_403_on_a_write_that_an_admin_may_do(api):
    pool = {"name": "albauth-pool", "slots": 2}
    viewer = api.cookie_of(GROUPS["viewer"])
    assert api.get("/api/v2/pools", {"Cookie": viewer})[0] == 200
    assert api.get("/api/v2/pools", {"Cookie": viewer}, "POST", pool)[0] == 403
    user = api.cookie_of(GROUPS["user"])
    assert api.get("/api/v2/pools", {"Cookie": user}, "POST", pool)[0] == 403
    assert api.get("/api/v2/connections", {"Cookie": user})[0] == 403
    admin = api.cookie_of(GROUPS["admin"])
    assert api.get("/api/v2/pools", {"Cookie": admin}, "POST", pool)[0] == 201


def test_the_menu_hides_what_a_viewer_may_not_open(api):
    viewer, admin = api.cookie_of(GROUPS["viewer"]), api.cookie_of(GROUPS["admin"])
    shown = {}
    for name, cookie in (("viewer", viewer), ("admin", admin)):
        status, _, body = api.get("/ui/auth/menus", {"Cookie": cookie})
        assert status == 200
        shown[name] = set(json.loads(body)["authorized_menu_items"])
    assert {"Connections", "Variables", "Config"} <= shown["admin"]
    assert not {"Connections", "Variables", "Config"} & shown["viewer"] and "Dags" in shown["viewer"]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://127.0.0.1.evil/",
    ],
)
def test_an_open_redirect_next_is_refused_without_a_cookie(api, target):
    status, headers, body = api.login(api.alb.token({"groups": ["airflow-admins"]}), target)
    assert status == 400 and "set-cookie" not in headers and "leaves this site" in body


def test_logout_drops_airflows_token_and_the_alb_session(api):
    status, headers, _ = api.get("/auth/logout", {"Cookie": api.cookie_of(GROUPS["viewer"])})
    assert status == 200
    cleared = headers["set-cookie"]
    assert '_token=""' in cleared and "AWSELBAuthSessionCookie-0" in cleared


def test_an_api_server_with_incomplete_settings_stops_with_the_missing_key_named(api):
    env = {k: v for k, v in api.env.items() if k != "AIRFLOW__ALB_AUTH__ALB_ARN"}
    result = subprocess.run(
        [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "airflow.exceptions.AirflowConfigException: [alb_auth] needs alb_arn (set AIRFLOW__ALB_AUTH__ALB_ARN)"
    )
