"""Settings every Airflow component must share, checked before anything starts.

Outside local mode a component started without `[api_auth] jwt_secret` or
`[core] fernet_key` would make up its own: tokens signed by one component would be
refused by the next, and connections encrypted by one unreadable by another. Refuse.
"""

import os
import re
from collections.abc import MutableMapping
from urllib.parse import urlsplit

from entrypoint import ConfigError
from healthchecks import Misconfigured
from healthchecks.airflow_config import setting

SHARED_SECRETS = (("api_auth", "jwt_secret"), ("core", "fernet_key"))
# 32 bytes in base64url without its padding: what a password generator (CloudFormation's
# GenerateSecretString, infra/) can make of a fernet key.
UNPADDED_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}")
RUNTIME_PIP = "_PIP_ADDITIONAL_REQUIREMENTS"


def check_shared_secrets(local_mode: bool) -> None:
    if local_mode:
        return
    missing = [env_name(section, key) for section, key in SHARED_SECRETS if not _is_set(section, key)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} not set: every component must share them "
            "(inject them from Secrets Manager; AIRFLOW_LOCAL_MODE=true only for local use)"
        )


def pad_fernet_keys(env: MutableMapping[str, str]) -> None:
    """Give each unpadded 43-character key of AIRFLOW__CORE__FERNET_KEY its "=" (Fernet needs it)."""
    name = env_name("core", "fernet_key")
    keys = env.get(name)
    if keys:
        env[name] = ",".join(
            f"{key}=" if UNPADDED_FERNET_KEY.fullmatch(key.strip()) else key for key in keys.split(",")
        )


def check_no_runtime_packages(env) -> None:
    """The official image's _PIP_ADDITIONAL_REQUIREMENTS installs at every start; this image
    has no pip at all. Refuse the setting rather than start without the packages it names."""
    if env.get(RUNTIME_PIP, "").strip():
        raise ConfigError(
            f"{RUNTIME_PIP} is not supported: packages are installed when the image is built "
            "(add them to requirements/airflow.in, run scripts/lock, rebuild)"
        )


def check_execution_api_url() -> str:
    """Workers reach the metadata DB only through this URL; it must be a full http(s) URL."""
    url = _setting("core", "execution_api_server_url") or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        name = env_name("core", "execution_api_server_url")
        raise ConfigError(f"{name} must be the api-server's http(s)://host:port/execution/ URL: {url!r}")
    return url


def env_name(section: str, key: str) -> str:
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


def _is_set(section: str, key: str) -> bool:
    # A `_SECRET` variable names a secrets-backend entry Airflow resolves itself.
    return bool(os.environ.get(env_name(section, key) + "_SECRET") or _setting(section, key))


def _setting(section: str, key: str) -> str | None:
    try:
        return setting(section, key)
    except Misconfigured as exc:
        raise ConfigError(str(exc)) from None
