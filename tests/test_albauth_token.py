"""albauth without Airflow: token checks, group mapping, the key store on a real S3/SSM
server, and `alb-keys fill` against a key server on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from albauth import keyfill, roles, token
from albauth.keystore import KeyCache, KeyStore, Location, StoreError
from albauth.roles import Role
from albauth.settings import ConfigError, Settings
from tests.support.alb import ALB_ARN, CLIENT_ID, ISSUER, Alb

EXPECTED = token.Expected(ALB_ARN, ISSUER, CLIENT_ID)


def verify(alb: Alb, signed: str, keys: dict | None = None):
    known = {alb.kid: alb.key.public_key()} if keys is None else keys
    return token.verify(signed, known.get, EXPECTED)


def test_a_token_the_alb_signed_verifies_with_its_padded_base64():
    alb = Alb()
    signed = alb.token({"groups": ["airflow-admins"]})
    assert "=" in signed  # the ALB's padding, which a strict decoder would refuse
    assert verify(alb, signed)["groups"] == ["airflow-admins"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda alb: alb.token(key=ec.generate_private_key(ec.SECP256R1())), "signature does not verify"),
        (lambda alb: alb.token(signer=ALB_ARN.replace("50dc6c", "ffffff")), "signer"),
        (lambda alb: alb.token(iss="https://evil.example.com"), "iss"),
        (lambda alb: alb.token(client="someone-else"), "client"),
        (lambda alb: alb.token(exp=1_700_000_000), "expired"),
        (lambda alb: alb.token(exp=None), "no exp in the token header"),
        (lambda alb: alb.token(kid="../../keys"), "malformed key id"),
        (lambda alb: alb.token(alg="HS256"), "is not ES256"),
    ],
    ids=[
        "forged-signature",
        "wrong-signer",
        "wrong-iss",
        "wrong-client",
        "expired-header-exp",
        "no-exp",
        "bad-kid",
        "alg",
    ],
)
def test_a_token_is_refused_with_its_reason(make, reason):
    alb = Alb()
    with pytest.raises(token.TokenRejected, match=reason):
        verify(alb, make(alb))


def test_the_header_exp_is_checked_although_a_plain_decode_accepts_the_token():
    alb = Alb()
    expired = alb.token(exp=1_700_000_000)  # the payload's own exp is still in the future
    assert jwt.decode(expired, alb.key.public_key(), algorithms=["ES256"], options={"verify_aud": False})
    with pytest.raises(token.TokenRejected, match="header exp"):
        verify(alb, expired)


def test_an_unknown_kid_is_refused_before_any_signature_check():
    alb = Alb()
    with pytest.raises(token.UnknownKeyId) as raised:
        verify(alb, alb.token(), keys={})
    assert raised.value.kid == alb.kid


def test_unsigned_and_garbage_tokens_are_refused():
    alb = Alb()
    unsigned = jwt.encode({"sub": "x"}, key=None, algorithm="none", headers={"kid": alb.kid})
    for bad in (unsigned, "not-a-jwt", ""):
        with pytest.raises(token.TokenRejected):
            verify(alb, bad)


def test_groups_map_to_the_highest_role_and_no_group_to_none():
    mapping = {Role.ADMIN: frozenset({"ops-admins"}), Role.VIEWER: frozenset({"everyone"})}
    assert roles.role_for(["everyone", "ops-admins"], mapping) is Role.ADMIN
    assert roles.role_for(["everyone"], mapping) is Role.VIEWER
    assert roles.role_for(["payroll"], mapping) is None
    assert roles.groups_in({"groups": "a, b c"}, "groups") == ["a, b c"]
    assert roles.groups_in({"groups": "a, b c"}, "groups", ",") == ["a", "b c"]
    assert roles.groups_in({"cognito:groups": ["a", "b c"]}, "cognito:groups") == ["a", "b c"]
    assert roles.groups_in({}, "groups") == []


def test_the_role_matrix():
    assert roles.allows(Role.VIEWER, "dag", "GET") and not roles.allows(Role.VIEWER, "dag", "POST")
    assert roles.allows(Role.USER, "dag", "POST") and not roles.allows(Role.USER, "pool", "POST")
    assert roles.allows(Role.OP, "connection", "GET") and not roles.allows(Role.USER, "connection", "GET")
    assert not roles.allows(Role.OP, "configuration", "PUT") and roles.allows(
        Role.ADMIN, "configuration", "PUT"
    )


def settings_from(values: dict) -> Settings:
    return Settings.read(values.get)


def test_settings_need_the_four_anchors_and_a_group():
    with pytest.raises(ConfigError, match=r"needs key_store, alb_arn.*AIRFLOW__ALB_AUTH__KEY_STORE"):
        settings_from({"issuer": ISSUER, "client_id": CLIENT_ID})
    base = {"key_store": "s3://b/k.json", "alb_arn": ALB_ARN, "issuer": ISSUER, "client_id": CLIENT_ID}
    with pytest.raises(ConfigError, match="maps no group"):
        settings_from(base)
    with pytest.raises(ConfigError, match="not s3://BUCKET/KEY or ssm:/"):
        settings_from({**base, "key_store": "https://x", "admin_groups": "a"})
    parsed = settings_from({**base, "admin_groups": "a, b", "viewer_groups": "c"})
    assert parsed.role_groups[Role.ADMIN] == {"a", "b"} and parsed.groups_claim == "groups"
    assert parsed.groups_separator is None


@pytest.fixture
def ssm_endpoint(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", s3_server.endpoint)


@pytest.fixture(params=["s3", "ssm"])
def store(request, s3, ssm_endpoint, tmp_path):
    if request.param == "s3":
        bucket = f"alb-keys-{tmp_path.name[-8:].lower().replace('_', '-')}"
        s3.create_bucket(Bucket=bucket)
        return KeyStore(Location.parse(f"s3://{bucket}/alb-auth/keys.json"))
    return KeyStore(Location.parse(f"ssm:/airflow-test/{tmp_path.name}/alb-keys"))


def test_the_store_round_trips_keys_and_wanted_markers(store):
    alb = Alb()
    assert store.read() == {}
    store.write({alb.kid: alb.pem})
    cache = KeyCache(store, reload_seconds=0)
    cache.load()
    assert cache.get(alb.kid) is not None
    assert cache.get("fake-unknown") is None
    assert store.wanted() == ["fake-unknown"]
    store.unwant("fake-unknown")
    assert store.wanted() == []


def test_a_damaged_store_is_refused_in_one_line_and_the_cache_keeps_its_keys(store):
    alb = Alb()
    store.write({alb.kid: alb.pem})
    cache = KeyCache(store, reload_seconds=0)
    cache.load()
    store.write({"fake-bad": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"})
    with pytest.raises(StoreError, match="key 'fake-bad' is not a PEM public key"):
        cache.load()
    assert cache.get(alb.kid) is not None  # a bad fill does not log everyone out


class KeyServer:
    """Serves PEMs by kid as public-keys.auth.elb.REGION.amazonaws.com does; counts requests."""

    def __init__(self, keys: dict[str, str]):
        self.keys, self.asked = keys, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                region, kid = self.path.strip("/").split("/")
                outer.asked.append((region, kid))
                body = outer.keys.get(kid, "").encode()
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{region}}/{{kid}}"


def test_fill_fetches_given_and_wanted_kids_and_drops_markers_of_unpublished_ones(store, capsys):
    first, second = Alb(), Alb()
    server = KeyServer({first.kid: first.pem, second.kid: second.pem})
    store.want(second.kid)  # the api-server met this one
    store.want("fake-never-published")
    assert keyfill.fill(store, [first.kid], server.url, "eu-west-1")
    assert set(store.read()) == {first.kid, second.kid}
    assert store.wanted() == []
    assert ("eu-west-1", first.kid) in server.asked
    out = capsys.readouterr().out
    assert f"kid {first.kid}: added" in out and "kid fake-never-published: not published" in out
    # nothing left to do: no request at all
    server.asked.clear()
    assert keyfill.fill(store, [first.kid], server.url, "eu-west-1") and server.asked == []


def test_fill_refuses_a_key_that_is_not_p256_and_stores_nothing(store, capsys):
    rsa_pem = (
        "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n"
        "9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END PUBLIC KEY-----\n"
    )
    server = KeyServer({"fake-rsa": rsa_pem})
    assert not keyfill.fill(store, ["fake-rsa"], server.url, "eu-west-1")
    assert store.read() == {}
    assert "kid fake-rsa:" in capsys.readouterr().out


def test_the_cli_refuses_bad_input_in_one_line_and_changes_nothing(s3, capsys):
    s3.create_bucket(Bucket="alb-keys-cli")
    url = "s3://alb-keys-cli/keys.json"
    for argv, message in (
        (["fill", "--store", url, "--region", "eu-west-1", "--kid", "../x"], "is not a key id"),
        (["fill", "--store", "http://x/keys.json", "--region", "eu-west-1"], "is not s3://BUCKET/KEY"),
        (["fill", "--store", url, "--region", "eu-west-1", "--keys-url", "file:///etc/{kid}"], "--keys-url"),
    ):
        with pytest.raises(SystemExit) as exited:
            keyfill.main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket="alb-keys-cli")


def test_list_shows_stored_and_wanted(s3, capsys):
    s3.create_bucket(Bucket="alb-keys-list")
    alb = Alb()
    store = KeyStore(Location.parse("s3://alb-keys-list/a/keys.json"))
    store.write({alb.kid: alb.pem})
    store.want("fake-next")
    keyfill.main(["list", "--store", "s3://alb-keys-list/a/keys.json"])
    assert capsys.readouterr().out.splitlines() == [f"{alb.kid}\tstored", "fake-next\twanted"]
    assert json.loads(s3.get_object(Bucket="alb-keys-list", Key="a/keys.json")["Body"].read()) == {
        alb.kid: alb.pem
    }
