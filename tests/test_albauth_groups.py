"""How the groups claim becomes groups, and groups a role, without Airflow: a string claim is
one group unless `[alb_auth] groups_separator` is set, and names match only exactly."""

import pytest

from albauth import roles, token
from albauth.roles import Role
from albauth.settings import ConfigError, Settings
from tests.support.alb import ALB_ARN, CLIENT_ID, ISSUER, Alb

ANCHORS = {"key_store": "s3://b/k.json", "alb_arn": ALB_ARN, "issuer": ISSUER, "client_id": CLIENT_ID}
MAPPED = {"admin_groups": "airflow-admins", "viewer_groups": "everyone"}
MAPPING = {Role.ADMIN: frozenset({"airflow-admins"}), Role.VIEWER: frozenset({"everyone"})}


def settings_from(**values: str | None) -> Settings:
    return Settings.read({**ANCHORS, **MAPPED, **values}.get)


def role_of(claims: dict, settings: Settings) -> Role | None:
    groups = roles.groups_in(claims, settings.groups_claim, settings.groups_separator)
    return roles.role_for(groups, settings.role_groups)


def test_a_string_claim_is_one_group_matched_as_a_whole():
    claims = {"groups": "Former airflow-admins"}
    assert roles.groups_in(claims, "groups") == ["Former airflow-admins"]
    assert roles.role_for(roles.groups_in(claims, "groups"), MAPPING) is None


NEAR_MISSES = [
    "Former airflow-admins",
    "airflow-admins readonly",
    "airflow-admins,contractors",
    "contractors, airflow-admins",
    " airflow-admins",
    "airflow-admins\n",
    "airflow-admins\teveryone",
    '["airflow-admins"]',
    '["airflow-admins", "everyone"]',
    "airflow-admins-readonly",
    "Airflow-Admins",
    ["Former airflow-admins"],
    ["airflow-admins everyone"],
    ["airflow-admins,everyone"],
    [" airflow-admins"],
    ["airflow-admins-readonly"],
    ["AIRFLOW-ADMINS"],
]


def test_no_near_miss_of_a_mapped_group_grants_a_role():
    granted = {
        repr(claim): role
        for claim in NEAR_MISSES
        if (role := roles.role_for(roles.groups_in({"groups": claim}, "groups"), MAPPING)) is not None
    }
    assert granted == {}


def test_a_signed_token_whose_group_only_mentions_an_admin_group_gets_no_role():
    alb = Alb()
    keys = {alb.kid: alb.key.public_key()}
    expected = token.Expected(ALB_ARN, ISSUER, CLIENT_ID)
    settings = settings_from()
    for groups, role in (("Former airflow-admins", None), ("airflow-admins", Role.ADMIN)):
        claims = token.verify(alb.token({"groups": groups}), keys.get, expected)
        assert roles.role_for(roles.groups_in(claims, settings.groups_claim), settings.role_groups) is role


@pytest.mark.parametrize("unset", [None, ""], ids=["absent", "empty"])
def test_an_unset_separator_splits_nothing(unset):
    settings = settings_from(groups_separator=unset)
    assert settings.groups_separator is None
    assert roles.groups_in({"groups": "a,b c"}, "groups", settings.groups_separator) == ["a,b c"]
    assert role_of({"groups": "airflow-admins,everyone"}, settings) is None


def test_a_configured_separator_splits_on_exactly_it_and_strips_each_part():
    settings = settings_from(groups_separator=",")
    assert settings.groups_separator == ","

    def groups(claim: str) -> list[str]:
        return roles.groups_in({"groups": claim}, "groups", settings.groups_separator)

    assert groups("a, b ,,c, ") == ["a", "b", "c"]
    assert groups("Former airflow-admins, everyone") == ["Former airflow-admins", "everyone"]
    assert groups("airflow-admins;everyone") == ["airflow-admins;everyone"]
    assert groups('["airflow-admins","x"]') == ['["airflow-admins"', '"x"]']
    assert role_of({"groups": "Former airflow-admins, everyone"}, settings) is Role.VIEWER
    assert role_of({"groups": "everyone , airflow-admins"}, settings) is Role.ADMIN
    assert role_of({"groups": "airflow-admins-readonly,Airflow-Admins"}, settings) is None


def test_a_multi_character_separator_splits_on_the_whole_of_it():
    settings = settings_from(groups_separator="||")
    split = roles.groups_in({"groups": "a|b||c"}, "groups", settings.groups_separator)
    assert split == ["a|b", "c"]


def test_a_list_claim_is_used_as_is_even_when_a_separator_is_set():
    settings = settings_from(groups_separator=",")
    claim = ["airflow-admins,everyone", "a b", " everyone "]
    assert roles.groups_in({"groups": claim}, "groups", settings.groups_separator) == claim
    assert role_of({"groups": claim}, settings) is None
    assert role_of({"groups": ["x", "everyone"]}, settings) is Role.VIEWER


@pytest.mark.parametrize(
    "claim",
    [
        ["airflow-admins", 3],
        ["airflow-admins", ["everyone"]],
        ["airflow-admins", None],
        {"airflow-admins": True},
        42,
        True,
    ],
    ids=["int-element", "nested-list", "null-element", "object", "number", "bool"],
)
def test_a_claim_that_is_not_a_string_or_a_list_of_strings_is_refused_whole(claim):
    refused = r"^the 'groups' claim is .*, not a string or a list of strings$"
    with pytest.raises(roles.GroupsClaimError, match=refused):
        roles.groups_in({"groups": claim}, "groups")


def test_no_claim_an_empty_one_or_null_is_no_group():
    for claims in ({}, {"groups": None}, {"groups": ""}, {"groups": []}):
        assert roles.groups_in(claims, "groups", None) == []
    assert roles.groups_in({"groups": " , ,"}, "groups", ",") == []


@pytest.mark.parametrize(
    ("separator", "extra", "reason"),
    [
        (" ", {}, "whitespace"),
        ("\t", {}, "whitespace"),
        (", ", {}, "whitespace"),
        (" ;", {}, "whitespace"),
        ("-", {}, "occurs in the group 'airflow-admins' of admin_groups"),
        (";", {"user_groups": "data;eng"}, "occurs in the group 'data;eng' of user_groups"),
    ],
    ids=["space", "tab", "comma-space", "space-semicolon", "in-a-group-name", "in-a-user-group"],
)
def test_a_bad_separator_stops_with_one_line_naming_the_variable(separator, extra, reason):
    with pytest.raises(ConfigError) as raised:
        settings_from(groups_separator=separator, **extra)
    message = str(raised.value)
    assert "AIRFLOW__ALB_AUTH__GROUPS_SEPARATOR" in message and reason in message
    assert message.startswith("[alb_auth] groups_separator") and "\n" not in message
