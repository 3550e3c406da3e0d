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


def groups_in(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The user's groups: a JSON list, or one string of names split by commas or spaces."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [name for name in value.replace(",", " ").split() if name]
    if isinstance(value, list):
        return [name for name in value if isinstance(name, str)]
    return []


def role_for(groups: Iterable[str], mapping: Mapping[Role, frozenset[str]]) -> Role | None:
    """The highest role any of the groups is mapped to; None when no group is."""
    held = set(groups)
    granted = [role for role, names in mapping.items() if held & names]
    return max(granted) if granted else None
