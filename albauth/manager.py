"""`AlbAuthManager`: an Airflow 3.1 auth manager that trusts only tokens signed by the ALB.

    [core] auth_manager = albauth.manager.AlbAuthManager

The login route (routes.py) turns a verified `x-amzn-oidc-data` token into Airflow's own
`_token` cookie; from then on Airflow checks its own JWT as with any auth manager. Roles
come from IdP groups (roles.py). No call leaves the VPC: the ALB talks to the IdP, and the
keys are read from a store behind a VPC endpoint, once at start and again only for a kid
not seen before.
"""

import logging
from functools import cached_property
from typing import Any

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.configuration import conf
from airflow.exceptions import AirflowConfigException

from albauth import roles, token
from albauth.keystore import KeyCache, KeyStore, StoreError
from albauth.roles import Role
from albauth.settings import SECTION, ConfigError, Settings

log = logging.getLogger(__name__)


class AlbUser(BaseUser):
    def __init__(self, *, username: str, role: Role):
        self.username = username
        self.role = role

    def get_id(self) -> str:
        return self.username

    def get_name(self) -> str:
        return self.username


class AlbAuthManager(BaseAuthManager[AlbUser]):
    @cached_property
    def settings(self) -> Settings:
        try:
            return Settings.read(lambda key: conf.get(SECTION, key, fallback=None))
        except ConfigError as error:
            raise AirflowConfigException(str(error)) from None

    @cached_property
    def keys(self) -> KeyCache:
        return KeyCache(KeyStore(self.settings.key_store), reload_seconds=self.settings.key_reload_seconds)

    def init(self) -> None:
        """Fail start-up on bad settings; warm the key cache so a login needs no call."""
        try:
            self.keys.load()
        except StoreError as error:
            log.error("ALB key store unreadable at start (logins will retry it): %s", error)
            return
        log.info("ALB auth: %d public keys from %s", len(self.keys.kids()), self.settings.key_store.url)

    # -- the login ------------------------------------------------------------------

    def user_from_alb_token(self, alb_token: str) -> AlbUser:
        """The user a verified ALB token names; token.TokenRejected (or NoRole) otherwise."""
        settings = self.settings
        claims = token.verify(alb_token, self.keys.get, settings.expected)
        name = str(claims.get(settings.username_claim) or claims.get("sub") or "")
        if not name:
            raise token.TokenRejected(f"no {settings.username_claim!r} or 'sub' claim")
        try:
            groups = roles.groups_in(claims, settings.groups_claim, settings.groups_separator)
        except roles.GroupsClaimError as error:
            raise roles.NoRole(f"{name} has no role: {error}") from None
        role = roles.role_for(groups, settings.role_groups)
        if role is None:
            raise roles.NoRole(f"{name} is in no group mapped to a role ({settings.groups_claim}: {groups})")
        return AlbUser(username=name, role=role)

    def get_url_login(self, **kwargs) -> str:
        return f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login"

    def get_url_logout(self) -> str | None:
        return f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/logout"

    def get_fastapi_app(self):
        from albauth.routes import create_app

        return create_app()

    # -- Airflow's own token --------------------------------------------------------

    def serialize_user(self, user: AlbUser) -> dict[str, Any]:
        return {"sub": user.username, "role": user.role.title}

    def deserialize_user(self, token: dict[str, Any]) -> AlbUser:
        return AlbUser(username=token["sub"], role=Role.named(token["role"]))

    # -- what each role may do (roles.MATRIX) ---------------------------------------

    def is_authorized_configuration(self, *, method, user: AlbUser, details=None) -> bool:
        return roles.allows(user.role, "configuration", method)

    def is_authorized_connection(self, *, method, user: AlbUser, details=None) -> bool:
        return roles.allows(user.role, "connection", method)

    def is_authorized_dag(self, *, method, user: AlbUser, access_entity=None, details=None) -> bool:
        return roles.allows(user.role, "dag", method)

    def is_authorized_asset(self, *, method, user: AlbUser, details=None) -> bool:
        return roles.allows(user.role, "asset", method)

    def is_authorized_asset_alias(self, *, method, user: AlbUser, details=None) -> bool:
        return roles.allows(user.role, "asset_alias", method)

    def is_authorized_pool(self, *, method, user: AlbUser, details=None) -> bool:
        return roles.allows(user.role, "pool", method)

    def is_authorized_variable(self, *, method, user: AlbUser, details=None) -> bool:
        return roles.allows(user.role, "variable", method)

    def is_authorized_view(self, *, access_view, user: AlbUser) -> bool:
        return roles.allows(user.role, "view", "GET")

    def is_authorized_custom_view(self, *, method, resource_name: str, user: AlbUser) -> bool:
        return roles.allows(user.role, "custom_view", method)

    def filter_authorized_menu_items(self, menu_items: list, *, user: AlbUser) -> list:
        least = roles.MENU_LEAST_ROLE
        return [item for item in menu_items if user.role >= least.get(item.value, Role.VIEWER)]
