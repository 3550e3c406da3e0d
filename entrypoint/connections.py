"""The metadata DB URL, the Celery broker URL and the result backend, from parts.

ECS injects each part from Secrets Manager as its own variable (`secrets` in the task
definition); this module joins them, URL-escaping what needs it, into the settings
Airflow reads. Variables (a setting Airflow already has wins only when no part is set;
setting both is an error, never a silent choice):

  AIRFLOW_DB_HOST, AIRFLOW_DB_PORT (5432), AIRFLOW_DB_NAME (airflow), AIRFLOW_DB_USER,
  AIRFLOW_DB_PASSWORD, AIRFLOW_DB_SSLMODE (require; unset in local mode)
  AIRFLOW_DB_SECRET   a JSON secret: RDS's managed master-user secret ({"username",
                      "password"}) or a rotation-style one that adds host, port, dbname
  AIRFLOW_REDIS_HOST, AIRFLOW_REDIS_PORT (6379), AIRFLOW_REDIS_DB (0), AIRFLOW_REDIS_USER,
  AIRFLOW_REDIS_PASSWORD (the ElastiCache AUTH token), AIRFLOW_REDIS_TLS (true; false in
  local mode): rediss:// with certificate checks, as ElastiCache in-transit encryption needs
"""

import json
from collections.abc import Mapping, MutableMapping
from urllib.parse import quote

from entrypoint import ConfigError
from entrypoint.values import boolean, local_mode, port

SQL_ALCHEMY_CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
BROKER_URL = "AIRFLOW__CELERY__BROKER_URL"
RESULT_BACKEND = "AIRFLOW__CELERY__RESULT_BACKEND"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# The fields of AIRFLOW_DB_SECRET and the variable each one stands in for.
SECRET_FIELDS = {
    "host": "AIRFLOW_DB_HOST",
    "port": "AIRFLOW_DB_PORT",
    "dbname": "AIRFLOW_DB_NAME",
    "username": "AIRFLOW_DB_USER",
    "password": "AIRFLOW_DB_PASSWORD",
}


def apply_settings_from_parts(env: MutableMapping[str, str]) -> None:
    """Add the settings built from parts to `env`. The entrypoint does it before a role starts;
    a health probe, which runs with the container's environment, does it again the same way."""
    env.update(settings_from_parts(env, local_mode(env)))


def settings_from_parts(env: Mapping[str, str], local_mode: bool) -> dict[str, str]:
    """The AIRFLOW__... settings to add to `env`; empty when no part is given."""
    settings: dict[str, str] = {}
    database = database_url(env, local_mode)
    if database:
        settings[SQL_ALCHEMY_CONN] = database
        if not _configured(env, RESULT_BACKEND):
            settings[RESULT_BACKEND] = f"db+{database}"
    broker = broker_url(env, local_mode)
    if broker:
        settings[BROKER_URL] = broker
    return settings


def database_url(env: Mapping[str, str], local_mode: bool) -> str | None:
    parts = _database_parts(env)
    if not parts:
        return None
    if _configured(env, SQL_ALCHEMY_CONN):
        raise ConfigError(f"both {SQL_ALCHEMY_CONN} and AIRFLOW_DB_* parts are set; set one")
    host = _require(parts, "AIRFLOW_DB_HOST")
    user = _require(parts, "AIRFLOW_DB_USER")
    password = parts.get("AIRFLOW_DB_PASSWORD", "")
    if not password and not local_mode:
        raise ConfigError("AIRFLOW_DB_PASSWORD is not set (nor 'password' in AIRFLOW_DB_SECRET)")
    db_port = port(parts.get("AIRFLOW_DB_PORT", "5432"), "AIRFLOW_DB_PORT")
    name = parts.get("AIRFLOW_DB_NAME") or "airflow"
    sslmode = env.get("AIRFLOW_DB_SSLMODE") or (None if local_mode else "require")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ConfigError(f"AIRFLOW_DB_SSLMODE must be one of {', '.join(SSLMODES)}: {sslmode!r}")
    url = f"postgresql+psycopg2://{_userinfo(user, password)}@{_host(host)}:{db_port}/{quote(name, safe='')}"
    return f"{url}?sslmode={sslmode}" if sslmode else url


def broker_url(env: Mapping[str, str], local_mode: bool) -> str | None:
    host = env.get("AIRFLOW_REDIS_HOST")
    if not host:
        others = sorted(k for k in env if k.startswith("AIRFLOW_REDIS_") and env[k])
        if others:
            raise ConfigError(f"{others[0]} is set but AIRFLOW_REDIS_HOST is not")
        return None
    if _configured(env, BROKER_URL):
        raise ConfigError(f"both {BROKER_URL} and AIRFLOW_REDIS_HOST are set; set one")
    redis_port = port(env.get("AIRFLOW_REDIS_PORT", "6379"), "AIRFLOW_REDIS_PORT")
    db = env.get("AIRFLOW_REDIS_DB", "0")
    if not db.isdigit():
        raise ConfigError(f"AIRFLOW_REDIS_DB must be a number >= 0: {db!r}")
    tls = boolean(env, "AIRFLOW_REDIS_TLS", default=not local_mode)
    user, password = env.get("AIRFLOW_REDIS_USER", ""), env.get("AIRFLOW_REDIS_PASSWORD", "")
    if user and not password:
        raise ConfigError("AIRFLOW_REDIS_USER is set but AIRFLOW_REDIS_PASSWORD is not")
    auth = f"{_userinfo(user, password)}@" if password else ""
    scheme, query = ("rediss", "?ssl_cert_reqs=required") if tls else ("redis", "")
    return f"{scheme}://{auth}{_host(host)}:{redis_port}/{int(db)}{query}"


def _database_parts(env: Mapping[str, str]) -> dict[str, str]:
    """AIRFLOW_DB_* variables merged with AIRFLOW_DB_SECRET's fields; a clash is an error."""
    parts = {name: env[name] for name in SECRET_FIELDS.values() if env.get(name)}
    raw = env.get("AIRFLOW_DB_SECRET")
    if not raw:
        return parts
    try:
        secret = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError("AIRFLOW_DB_SECRET is not valid JSON") from None  # never echo a secret
    if not isinstance(secret, dict):
        raise ConfigError("AIRFLOW_DB_SECRET must be a JSON object")
    for field, name in SECRET_FIELDS.items():
        if secret.get(field) in (None, ""):
            continue
        value = str(secret[field])
        if name in parts and parts[name] != value:
            raise ConfigError(f"{name} and AIRFLOW_DB_SECRET's {field!r} differ; set one")
        parts[name] = value
    return parts


def _configured(env: Mapping[str, str], name: str) -> bool:
    return any(env.get(name + suffix) for suffix in ("", "_CMD", "_SECRET"))


def _require(parts: dict[str, str], name: str) -> str:
    if not parts.get(name):
        field = next(f for f, n in SECRET_FIELDS.items() if n == name)
        raise ConfigError(f"{name} is not set (nor {field!r} in AIRFLOW_DB_SECRET)")
    return parts[name]


def _userinfo(user: str, password: str) -> str:
    return f"{quote(user, safe='')}:{quote(password, safe='')}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
