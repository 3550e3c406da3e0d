"""Typed values from environment variables; a bad one is a ConfigError naming the variable."""

from collections.abc import Mapping

from entrypoint import ConfigError

LOCAL_MODE = "AIRFLOW_LOCAL_MODE"
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text not in BOOLEANS:
        raise ConfigError(f"{name} must be true or false: {env[name]!r}")
    return BOOLEANS[text]


def local_mode(env: Mapping[str, str]) -> bool:
    """AIRFLOW_LOCAL_MODE=true: shared secrets may be missing, no TLS defaults."""
    return boolean(env, LOCAL_MODE, default=False)


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name) or str(default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{name} must be seconds > 0: {text!r}")
    return value


def port(text: str, name: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{name} must be a port number: {text!r}")
    return int(text)
