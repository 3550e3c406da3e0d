"""IdP groups to Airflow roles, and what each role may do.

Four roles, each with everything the one below it has:
    Viewer  reads DAGs, runs, task logs, assets, pools and Airflow's own pages
    User    + triggers, clears, pauses and marks DAG runs and task instances
    Op      + connections, variables, pools, assets, and reads the configuration
    Admin   everything, including writing what the API lets one write of the configuration
"""

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    VIEWER = 0
    USER = 1
    OP = 2
    ADMIN = 3

    @property
    def title(self) -> str:
        return self.name.title()

    @classmethod
    def named(cls, name: str) -> "Role":
        """Role from its name in any case ("Admin", "ADMIN"); KeyError if none."""
        return cls[name.upper()]


class NoRole(Exception):
    """A verified user who is in no group mapped to a role (one line)."""


# resource -> (least role that may read it, least role that may change it)
MATRIX: dict[str, tuple[Role, Role]] = {
    "configuration": (Role.OP, Role.ADMIN),
    "connection": (Role.OP, Role.OP),
    "variable": (Role.OP, Role.OP),
    "pool": (Role.VIEWER, Role.OP),
    "dag": (Role.VIEWER, Role.USER),
    "asset": (Role.VIEWER, Role.OP),
    "asset_alias": (Role.VIEWER, Role.OP),
    "view": (Role.VIEWER, Role.ADMIN),
    "custom_view": (Role.VIEWER, Role.ADMIN),
}

# UI menu entries that lead only to what a role below Op may not read.
MENU_LEAST_ROLE: dict[str, Role] = {"Config": Role.OP, "Connections": Role.OP, "Variables": Role.OP}


def allows(role: Role, resource: str, method: str) -> bool:
    read, write = MATRIX[resource]
    return role >= (read if method in ("GET", "MENU") else write)


class GroupsClaimError(ValueError):
    """The groups claim is neither a string nor a list of strings (one line)."""


def groups_in(claims: Mapping[str, Any], claim: str, separator: str | None = None) -> list[str]:
    """The user's groups, each to be matched whole and case-sensitively.

    A list of strings is taken as is. A string is one group, or with a separator the parts
    between separators, stripped, empty ones dropped. No claim, null, "" or [] is no group.
    Any other shape, a list holding anything but strings included, raises GroupsClaimError:
    a claim not understood whole grants nothing.
    """
    value = claims.get(claim)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return _split_groups(value, separator)
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return list(value)
    raise GroupsClaimError(f"the {claim!r} claim is {_shape(value)}, not a string or a list of strings")


def _split_groups(text: str, separator: str | None) -> list[str]:
    if separator is None:
        return [text]
    return [name.strip() for name in text.split(separator) if name.strip()]


def _shape(value: Any) -> str:
    if isinstance(value, list):
        kinds = sorted({_json_kind(name) for name in value if not isinstance(name, str)})
        return f"an array with {' and '.join(kinds)} in it"
    return _json_kind(value)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "an array"}.get(type(value), f"a {type(value).__name__}")


def role_for(groups: Iterable[str], mapping: Mapping[Role, frozenset[str]]) -> Role | None:
    """The highest role any of the groups is mapped to; None when no group is."""
    held = set(groups)
    granted = [role for role, names in mapping.items() if held & names]
    return max(granted) if granted else None
