"""docker-compose.yml's `sso` profile on a clean copy of this checkout: the login path of ECS.

In order: without the profile the file holds exactly the default services, and with it the
three of the profile, wired to each other; `--profile sso up --build -d` gets the fake ALB
and the SSO api-server healthy, with the ALB's key in the store; `admin` and `viewer` log
in at the mock IdP through the fake ALB, as a browser does, with plain HTTP requests and
cookies kept by hand; the viewer reads and may not write, the admin writes; without an ALB
session the API is denied by the ALB itself; `--profile sso down -v` leaves nothing.

It shares the session's compose project with test_compose.py, which takes its stack down
last; if that stack is still up, `up` adds the profile's services to it.
"""

import base64
import http.client
import json
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import pytest

from albauth.fake_alb import LOCAL_SIGNER, SESSION_COOKIE
from tests.containers.compose import LONG_RUNNING, ONE_OFF
from tests.e2e.stack import free_port
from tests.support.trees import wait_for

pytestmark = pytest.mark.container

SSO_SERVICES = {"idp", "alb", "api-server-sso"}
KEY_STORE = "s3://airflow-local/alb-auth/keys.json"
DENIED_BY_ALB = "401 Authorization Required\n"  # the fake ALB's deny rule, never Airflow's JSON
USERS = {"admin": "Admin", "viewer": "Viewer"}
REPORT: dict[str, float] = {}


@dataclass
class Response:
    status: int
    location: str
    cookies: dict[str, str]
    body: str


@dataclass
class Sso:
    url: str  # the fake ALB, as the browser reaches it
    idp_port: int


@pytest.fixture(scope="module")
def sso(compose_project):
    """Host ports of the profile's own, so it never meets a stack a developer runs here."""
    taken = {compose_project.port}
    ports = []
    while len(ports) < 2:
        port = free_port()
        if port not in taken:
            taken.add(port)
            ports.append(port)
    compose_project.env.update(AIRFLOW_SSO_PORT=str(ports[0]), AIRFLOW_IDP_PORT=str(ports[1]))
    return Sso(f"http://127.0.0.1:{ports[0]}", ports[1])


def test_the_profile_adds_three_services_and_leaves_the_default_stack_as_it_was(compose_project, sso):
    default = json.loads(compose_project.compose("config", "--format", "json").stdout)["services"]
    assert set(default) == {*LONG_RUNNING, *ONE_OFF}
    quiet = compose_project.compose("--profile", "sso", "config", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    config = json.loads(compose_project.compose("--profile", "sso", "config", "--format", "json").stdout)
    services = config["services"]
    assert set(services) == {*LONG_RUNNING, *ONE_OFF, *SSO_SERVICES}
    for name in default:  # the profile changes none of the default services
        assert services[name] == default[name], name

    alb, api, idp = services["alb"], services["api-server-sso"], services["idp"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in alb["command"] if arg.startswith("--"))
    env = api["environment"]
    assert alb["command"][:3] == ["python", "-m", "albauth.fake_alb"] and "signer" not in flags
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "albauth.manager.AlbAuthManager"
    assert env["AIRFLOW__ALB_AUTH__ALB_ARN"] == LOCAL_SIGNER
    assert env["AIRFLOW__ALB_AUTH__ISSUER"] == flags["issuer"]
    assert env["AIRFLOW__ALB_AUTH__CLIENT_ID"] == flags["client-id"]
    assert env["AIRFLOW__ALB_AUTH__KEY_STORE"] == flags["publish-key"] == KEY_STORE
    assert flags["upstream"] == "http://api-server-sso:8080"
    assert flags["authorization-endpoint"] == f"http://localhost:{sso.idp_port}/oauth2/authorize"
    assert "ports" not in api  # only the alb reaches it
    assert api["depends_on"]["alb"]["condition"] == "service_healthy"
    assert api["image"] == alb["image"] == default["api-server"]["image"]
    for service in (alb, idp):
        assert [port["host_ip"] for port in service["ports"]] == ["127.0.0.1"]


@pytest.mark.timeout(900)
def test_up_with_the_profile_gets_the_alb_and_the_sso_api_server_healthy(compose_project, sso):
    started = time.monotonic()
    up = compose_project.compose("--profile", "sso", "up", "--build", "-d", timeout=840, check=False)
    assert up.returncode == 0, up.stderr[-4000:]

    def healthy():
        services = compose_project.services()
        return all(services.get(name, {}).get("Health") == "healthy" for name in SSO_SERVICES)

    try:
        wait_for(healthy, timeout=300, step=1, what="idp, alb and api-server-sso healthy")
    except AssertionError:
        raise AssertionError(compose_project.logs(*SSO_SERVICES)) from None
    REPORT["--profile sso up --build -d, all healthy"] = time.monotonic() - started

    # The key the alb signs with is in the store the api-server reads (alb-keys fill's job on AWS).
    # One start, one key: a restart would have made and published another.
    kids = re.findall(r"key id (fake-[0-9a-f]+)", compose_project.logs("alb", size=1_000_000))
    read = f"from albauth.keystore import *; print(*KeyStore(Location.parse({KEY_STORE!r})).read())"
    assert len(kids) == 1 and compose_project.exec("alb", "python", "-c", read).split() == kids


@pytest.mark.parametrize("user", USERS)
def test_a_user_logs_in_at_the_idp_through_the_alb_and_gets_airflows_token(sso, user):
    started = time.monotonic()
    cookies = login(sso, user)
    REPORT[f"{user}: login, seven requests"] = time.monotonic() - started
    claims = jwt_claims(cookies["_token"])
    assert (claims["sub"], claims["role"]) == (f"{user}@example.com", USERS[user])
    pools = request(f"{sso.url}/api/v2/pools", cookies=cookies)
    assert pools.status == 200 and "default_pool" in pools.body, pools


def test_the_viewer_reads_but_may_not_write_and_the_admin_writes(sso):
    viewer, admin = login(sso, "viewer"), login(sso, "admin")
    pool = {"name": f"sso-{secrets.token_hex(3)}", "slots": 2}
    assert request(f"{sso.url}/api/v2/pools", cookies=viewer).status == 200
    refused = request(f"{sso.url}/api/v2/pools", "POST", cookies=viewer, body=pool)
    assert refused.status == 403, refused
    created = request(f"{sso.url}/api/v2/pools", "POST", cookies=admin, body=pool)
    assert created.status == 201, created
    assert pool["name"] in request(f"{sso.url}/api/v2/pools", cookies=viewer).body


def test_the_alb_denies_the_api_without_its_session_and_airflow_without_its_token(sso):
    cookies = login(sso, "viewer")
    for sent in ({}, {"_token": cookies["_token"]}):
        denied = request(f"{sso.url}/api/v2/pools", cookies=sent)
        assert (denied.status, denied.body) == (401, DENIED_BY_ALB), denied
    # The session alone passes the ALB; Airflow still wants its own token.
    airflow = request(f"{sso.url}/api/v2/pools", cookies={SESSION_COOKIE: cookies[SESSION_COOKIE]})
    assert airflow.status == 401 and airflow.body != DENIED_BY_ALB, airflow
    # A token a client makes up is dropped by the ALB, never reaching the login route.
    forged = request(
        f"{sso.url}/auth/login",
        cookies={SESSION_COOKIE: cookies[SESSION_COOKIE]},
        headers={"x-amzn-oidc-data": "forged"},
    )
    assert forged.status == 303 and jwt_claims(forged.cookies["_token"])["role"] == "Viewer", forged


def test_down_v_with_the_profile_leaves_no_container_volume_or_network(compose_project):
    assert set(compose_project.services()) >= SSO_SERVICES
    started = time.monotonic()
    compose_project.compose("--profile", "sso", "down", "-v", "--timeout", "150", timeout=300)
    REPORT["--profile sso down -v"] = time.monotonic() - started
    assert compose_project.leftovers() == []
    print("\n" + "\n".join(f"{what}: {seconds:.1f} s" for what, seconds in REPORT.items()))


# -- a browser, by hand ----------------------------------------------------------------


def login(sso: Sso, user: str) -> dict[str, str]:
    """The browser's path: Airflow -> the ALB -> the IdP's page -> the ALB -> Airflow's login.
    Returns the cookies Airflow's host holds at the end: the ALB session and `_token`."""
    home = f"{sso.url}/"
    to_idp = request(home)
    assert to_idp.status == 302, to_idp
    authorize = to_idp.location
    assert authorize.startswith(f"http://localhost:{sso.idp_port}/oauth2/authorize?"), authorize
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == ["airflow-local"]
    assert query["redirect_uri"] == [f"{sso.url}/oauth2/idpresponse"]

    page = request(authorize)
    assert page.status == 200 and 'name="sub"' in page.body and "Authorize" in page.body, page
    back = request(authorize, "POST", form={"sub": user})
    assert back.status == 302 and back.location.startswith(f"{sso.url}/oauth2/idpresponse?code="), back

    session = request(back.location)
    assert session.status == 302 and session.location == home, session
    cookies = {SESSION_COOKIE: session.cookies[SESSION_COOKIE]}

    # What the UI does on its first 401: Airflow's login URL, which names the auth manager's.
    start = request(f"{sso.url}/api/v2/auth/login?next={quote(home, safe='')}", cookies=cookies)
    assert start.status in (302, 307) and urlsplit(start.location).path == "/auth/login", start
    done = request(urljoin(sso.url, start.location), cookies=cookies)
    assert done.status == 303 and done.location == home and "_token" in done.cookies, done
    cookies["_token"] = done.cookies["_token"]
    assert request(home, cookies=cookies).status == 200
    return cookies


def request(
    url: str,
    method: str = "GET",
    *,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: dict | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """One request, no redirect followed."""
    parts = urlsplit(url)
    head = dict(headers or {})
    data = None
    if cookies:
        head["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    if body is not None:
        data, head["Content-Type"] = json.dumps(body), "application/json"
    if form is not None:
        data, head["Content-Type"] = urlencode(form), "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), data, head)
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
    finally:
        connection.close()
    set_cookies = {}
    for line in response.msg.get_all("Set-Cookie") or []:
        name, _, value = line.split(";", 1)[0].partition("=")
        set_cookies[name.strip()] = value.strip()
    return Response(response.status, response.getheader("Location") or "", set_cookies, text[:2000])


def jwt_claims(token: str) -> dict:
    """A JWT's payload, unverified: what the api-server put in it."""
    payload = token.strip('"').split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
