"""The `[alb_auth]` configuration; every key is also AIRFLOW__ALB_AUTH__<KEY>.

key_store        s3://BUCKET/KEY or ssm:/NAME holding {kid: PEM}      required
alb_arn          the load balancer's ARN, the token header's `signer`  required
issuer           the IdP's issuer URL, the header's `iss`              required
client_id        the OIDC client id of the listener rule, `client`     required
groups_claim     the claim that lists the user's IdP groups            groups
groups_separator splits a groups claim that is one string, e.g. ","    unset: the string is one group
username_claim   the claim shown as the user's name                    email (then sub)
admin_groups, op_groups, user_groups, viewer_groups
                 IdP groups granted each role, comma-separated; at least one is set
logout_url       where logout sends the browser (the IdP's end-session page)   none
session_cookie_name  the listener rule's SessionCookieName, cleared on logout   AWSELBAuthSessionCookie
key_reload_seconds  least time between store reads for an unknown kid  60
"""

from collections.abc import Callable
from dataclasses import dataclass

from albauth.keystore import Location, StoreError
from albauth.roles import Role
from albauth.token import Expected

SECTION = "alb_auth"
REQUIRED = ("key_store", "alb_arn", "issuer", "client_id")


class ConfigError(Exception):
    """The [alb_auth] configuration is incomplete or wrong (one line)."""


@dataclass(frozen=True)
class Settings:
    key_store: Location
    expected: Expected
    groups_claim: str
    groups_separator: str | None
    username_claim: str
    role_groups: dict[Role, frozenset[str]]
    logout_url: str
    session_cookie_name: str
    key_reload_seconds: float

    @classmethod
    def read(cls, get: Callable[[str], str | None]) -> "Settings":
        """From a lookup of [alb_auth] keys (None or "" when unset)."""
        values = {key: (get(key) or "").strip() for key in (*REQUIRED, "logout_url")}
        missing = [key for key in REQUIRED if not values[key]]
        if missing:
            names = ", ".join(f"AIRFLOW__ALB_AUTH__{key.upper()}" for key in missing)
            raise ConfigError(f"[alb_auth] needs {', '.join(missing)} (set {names})")
        try:
            store = Location.parse(values["key_store"])
        except StoreError as error:
            raise ConfigError(f"[alb_auth] {error}") from None
        role_groups = {role: _names(get(f"{role.name.lower()}_groups")) for role in Role}
        if not any(role_groups.values()):
            raise ConfigError("[alb_auth] maps no group to a role: set admin_, op_, user_ or viewer_groups")
        separator = _separator(get("groups_separator"), role_groups)
        return cls(
            key_store=store,
            expected=Expected(values["alb_arn"], values["issuer"], values["client_id"]),
            groups_claim=(get("groups_claim") or "groups").strip(),
            groups_separator=separator,
            username_claim=(get("username_claim") or "email").strip(),
            role_groups=role_groups,
            logout_url=values["logout_url"],
            session_cookie_name=(get("session_cookie_name") or "AWSELBAuthSessionCookie").strip(),
            key_reload_seconds=_seconds(get("key_reload_seconds"), 60.0),
        )


def _names(text: str | None) -> frozenset[str]:
    return frozenset(name.strip() for name in (text or "").split(",") if name.strip())


def _separator(text: str | None, role_groups: dict[Role, frozenset[str]]) -> str | None:
    """None (a string claim is one group) when unset or ""; otherwise exactly as written."""
    if not text:
        return None
    where = "(AIRFLOW__ALB_AUTH__GROUPS_SEPARATOR)"
    if any(char.isspace() for char in text):
        hint = "".join(text.split()) or ","
        raise ConfigError(
            f"[alb_auth] groups_separator {text!r} holds whitespace {where}: group names may hold"
            f" spaces, and each part is stripped anyway; write {hint!r}"
        )
    if clash := _group_holding(text, role_groups):
        key, name = clash
        raise ConfigError(
            f"[alb_auth] groups_separator {text!r} {where} occurs in the group {name!r} of {key},"
            " which a split claim could never match"
        )
    return text


def _group_holding(text: str, role_groups: dict[Role, frozenset[str]]) -> tuple[str, str] | None:
    """The first (setting key, group name) whose name contains `text`."""
    for role in sorted(role_groups, reverse=True):
        for name in sorted(role_groups[role]):
            if text in name:
                return f"{role.name.lower()}_groups", name
    return None


def _seconds(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"[alb_auth] key_reload_seconds {text!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"[alb_auth] key_reload_seconds {text!r} is negative")
    return value
