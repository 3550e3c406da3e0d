"""The settings file: read it (TOML, or JSON by its suffix), check every key, and return
the values as a plain nested dict. Every problem is one line naming its key; any problem
means nothing is rendered."""

import json
import re
import tomllib
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from taskdefs import TaskdefsError, awsids
from taskdefs.fargate import size_problem

REQUIRED = object()
NAME = re.compile(r"[a-z][a-z0-9-]{0,27}")  # "<name>-api" must fit a 32-character target group name
CLUSTER = re.compile(r"[A-Za-z0-9_-]{1,255}")
# No "*" or "?": a prefix goes into IAM resources, where they are wildcards.
PREFIX = re.compile(r"[A-Za-z0-9!_.'()-]+(?:/[A-Za-z0-9!_.'()-]+)*")
ENDPOINT = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
LOG_GROUP = re.compile(r"[A-Za-z0-9_./#-]{1,512}")
TAG = re.compile(r"[\w .:/=+@-]{1,128}")
ARCHITECTURES = ("ARM64", "X86_64")
VOLUMES = ("efs", "task")
# Not s3sync's "auto": it tells the modes apart by a 404 for LATEST.json, and S3 answers a
# role that may list only the DAG prefix with 403 instead.
SYNC_MODES = ("manifest", "listing")
DEFAULT_SIZES = {
    "api-server": {"cpu": 1024, "memory": 2048, "count": 2},
    "scheduler": {"cpu": 1024, "memory": 2048, "count": 1},
    "dag-processor": {"cpu": 1024, "memory": 2048, "count": 1},
    "triggerer": {"cpu": 512, "memory": 1024, "count": 1},
    "worker": {"cpu": 2048, "memory": 4096},  # how many: workers.min .. workers.max
    "db-migrate": {"cpu": 512, "memory": 1024},
}
DEFAULT_BACKEND_PREFIXES = ["airflow/connections", "airflow/variables"]
# Application Auto Scaling's six-field cron: minutes hours day-of-month month day-of-week year.
SCHEDULE = re.compile(r"cron\((\S+ ){5}\S+\)")
MAX_WORKERS = 1000
# The api-server reads the ALB's signing keys from, and asks for new ones under, this prefix
# of the DAG bucket (config/ecs/task-definitions/api-server.json, iam/api-server.json).
AUTH_KEY_PREFIX = "alb-auth"
NO_SPACE = re.compile(r"\S{1,255}")

Check = Callable[[object], str | None]


def load(path: Path) -> dict:
    """The checked settings of the file at `path`; TaskdefsError lists every problem."""
    raw = parse(path)
    reader = _Reader(raw)
    settings = _read(reader)
    problems = reader.problems + reader.unknown_keys()
    if problems:
        raise TaskdefsError("\n".join(f"{path}: {problem}" for problem in problems))
    return settings


def parse(path: Path) -> dict:
    """The file as a plain table, unchecked."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TaskdefsError(f"{path}: cannot read the settings: {exc.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TaskdefsError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    if not isinstance(raw, dict):
        raise TaskdefsError(f"{path}: the settings must be a table of keys")
    return raw


class _Reader:
    """Reads dotted keys from the raw settings, remembering what it read and what was wrong."""

    def __init__(self, raw: dict):
        self.raw = raw
        self.read: set[str] = set()
        self.open_tables: set[str] = set()
        self.problems: list[str] = []

    def get(self, key: str, check: Check | None = None, default: object = REQUIRED, kind: type = str):
        self.read.add(key)
        value = self.lookup(key)
        if value is None:
            if default is REQUIRED:
                self.problems.append(f"{key}: missing")
            return default if default is not REQUIRED else None
        problem = _type_problem(value, kind) or (check(value) if check else None)
        if problem:
            self.problems.append(f"{key}: {problem}: {value!r}")
            return None
        return value

    def table(self, key: str) -> dict:
        """An open table (any keys): only its presence and shape are checked here."""
        self.open_tables.add(key)
        value = self.lookup(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"{key}: must be a table")
            return {}
        return value

    def unknown_keys(self) -> list[str]:
        """Keys of the file nothing read: unknown ones, and values where a table belongs."""
        known = self.read | self.open_tables
        problems = []
        for key in _leaf_keys(self.raw, known):
            if key in known:
                continue
            if any(read.startswith(f"{key}.") for read in known):
                problems.append(f"{key}: must be a table")
            else:
                problems.append(f"{key}: unknown key")
        return problems

    def lookup(self, key: str):
        node = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node


def _leaf_keys(node: dict, known: set[str], prefix: str = "") -> list[str]:
    """Every key of the file down to a value, or to a key read as a whole (never below it)."""
    keys = []
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in known:
            keys.extend(_leaf_keys(value, known, f"{key}.") or [key])
        else:
            keys.append(key)
    return keys


def _type_problem(value, kind: type) -> str | None:
    if kind is list:
        if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
            return "must be a non-empty list of strings"
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if kind is bool and not isinstance(value, bool):
        return "must be true or false"
    if kind is str and not isinstance(value, str):
        return "must be a string"
    return None


def _pattern(regex: re.Pattern, what: str) -> Check:
    return lambda value: None if regex.fullmatch(value) else f"not {what}"


def _each(check: Check) -> Check:
    return lambda values: next(filter(None, map(check, values)), None)


def _one_of(choices: tuple[str, ...]) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _whole_secret(check: Check) -> Check:
    """The database login is read as one JSON object: no :json-key: of it."""

    def whole(value: str) -> str | None:
        problem = check(value)
        if problem is None and awsids.SECRET_ARN.fullmatch(value)["field"]:
            return "must be the whole secret (its JSON is read), without a :json-key: suffix"
        return problem

    return whole


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be > 0"


def _port(value: int) -> str | None:
    return None if 0 < value < 65536 else "not a port number"


def _https_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        return "must be an https:// URL"
    return None


def _https_url_or_empty(value: str) -> str | None:
    return _https_url(value) if value else None


def _group(value: str) -> str | None:
    # The api-server gets each list joined by commas.
    if not value or value != value.strip() or "," in value:
        return "not a group name (no commas, no surrounding spaces)"
    return None


def _https_origin(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return "must be the api-server's URL through the load balancer, e.g. https://airflow.internal.example.com"
    return None


def _read(reader: _Reader) -> dict:
    get = reader.get
    region = get("region", awsids.region_problem) or ""
    account = get("account", _pattern(awsids.ACCOUNT, "a 12-digit account id")) or ""

    def arn(kind: str) -> Check:
        return lambda value: awsids.arn_problem(kind, value, region, account)

    def resource(kind: str) -> Check:
        return lambda value: awsids.resource_id_problem(kind, value)

    volume = get("dags.volume", _one_of(VOLUMES), default="efs")
    efs = volume == "efs"
    settings = {
        "name": get("name", _pattern(NAME, "a lower-case name of up to 28 letters, digits and -")),
        "account": account,
        "region": region,
        "cluster": get("cluster", _pattern(CLUSTER, "an ECS cluster name")),
        "architecture": get("architecture", _one_of(ARCHITECTURES), default="ARM64"),
        "ecs_exec": get("ecs_exec", default=False, kind=bool),
        "tags": _tags(reader),
        "images": {
            "airflow": get("images.airflow", lambda value: awsids.image_problem(value, region)),
            "s3sync": get("images.s3sync", lambda value: awsids.image_problem(value, region)),
        },
        "network": {
            "vpc_id": get("network.vpc_id", resource("vpc")),
            "subnets": get("network.subnets", _each(resource("subnet")), kind=list),
            "security_groups": get("network.security_groups", _each(resource("sg")), kind=list),
            "vpc_endpoints": get(
                "network.vpc_endpoints", _each(_pattern(ENDPOINT, "a VPC endpoint service name")), kind=list
            ),
        },
        "dags": {
            "bucket": get("dags.bucket", awsids.bucket_problem),
            "prefix": get("dags.prefix", _pattern(PREFIX, "an S3 prefix (no leading or trailing /)"), "dags"),
            "volume": volume,
            "efs_file_system_id": get("dags.efs_file_system_id", resource("fs"), REQUIRED if efs else None),
            "efs_access_point_id": get(
                "dags.efs_access_point_id", resource("fsap"), REQUIRED if efs else None
            ),
            "sync_interval": get("dags.sync_interval", _positive, default=10, kind=int),
            "mode": get("dags.mode", _one_of(SYNC_MODES), default="manifest"),
        },
        "logs": {
            "bucket": get("logs.bucket", awsids.bucket_problem),
            "prefix": get("logs.prefix", _pattern(PREFIX, "an S3 prefix (no leading or trailing /)"), "logs"),
            "log_group": get("logs.log_group", _pattern(LOG_GROUP, "a CloudWatch Logs group name")),
        },
        "database": {
            "host": get("database.host", awsids.hostname_problem),
            "port": get("database.port", _port, default=5432, kind=int),
            "name": get("database.name", _pattern(CLUSTER, "a database name"), "airflow"),
        },
        "redis": {
            "host": get("redis.host", awsids.hostname_problem),
            "port": get("redis.port", _port, default=6379, kind=int),
        },
        "api": {
            "url": get("api.url", _https_origin),
            "target_group_arn": get("api.target_group_arn", arn("target-group"), default=None),
        },
        "secrets": {
            "database": get("secrets.database", _whole_secret(arn("secret"))),
            "jwt_secret": get("secrets.jwt_secret", arn("secret")),
            "fernet_key": get("secrets.fernet_key", arn("secret")),
            "api_secret_key": get("secrets.api_secret_key", arn("secret")),
            "redis_password": get("secrets.redis_password", arn("secret"), default=None),
            "backend_prefixes": get(
                "secrets.backend_prefixes",
                _each(_pattern(PREFIX, "a secret name prefix")),
                default=DEFAULT_BACKEND_PREFIXES,
                kind=list,
            ),
        },
        "kms": {"key_arn": get("kms.key_arn", arn("kms-key"), default=None)},
        "auth": _auth(reader, arn("application-load-balancer")),
        "sizes": _sizes(reader),
        "workers": _workers(reader),
    }
    if volume == "task":
        for key in ("dags.efs_file_system_id", "dags.efs_access_point_id"):
            if reader.lookup(key) is not None:
                reader.problems.append(f'{key}: only with dags.volume = "efs"')
    prefix = settings["dags"]["prefix"]
    if prefix and prefix.split("/", 1)[0] == AUTH_KEY_PREFIX:
        reader.problems.append(f"dags.prefix: {AUTH_KEY_PREFIX}/ holds the ALB's login keys: {prefix!r}")
    return settings


def _auth(reader: _Reader, alb_arn: Check) -> dict:
    """Single sign-on through the ALB: what the api-server checks the ALB's user token against,
    and which IdP groups get which Airflow role (none: omit the key)."""
    get = reader.get
    return {
        "alb_arn": get("auth.alb_arn", alb_arn),
        "issuer": get("auth.issuer", _https_url),
        "client_id": get("auth.client_id", _pattern(NO_SPACE, "an OIDC client id")),
        "groups_claim": get("auth.groups_claim", _pattern(NO_SPACE, "a claim name"), default="groups"),
        "admin_groups": get("auth.admin_groups", _each(_group), kind=list),
        "op_groups": get("auth.op_groups", _each(_group), default=[], kind=list),
        "user_groups": get("auth.user_groups", _each(_group), default=[], kind=list),
        "viewer_groups": get("auth.viewer_groups", _each(_group), default=[], kind=list),
        "logout_url": get("auth.logout_url", _https_url_or_empty, default=""),
    }


def _tags(reader: _Reader) -> dict[str, str]:
    tags = reader.table("tags")
    for key, value in tags.items():
        if not isinstance(value, str) or not TAG.fullmatch(key) or not TAG.fullmatch(value):
            reader.problems.append(f"tags.{key}: a tag is a key and a string value of up to 128 characters")
    return tags


def _workers(reader: _Reader) -> dict:
    """Celery workers that follow the backlog, Spot first, and sleep off-hours."""
    get = reader.get
    workers = {
        "concurrency": get("workers.concurrency", _between(1, 1024), default=8, kind=int),
        "min": get("workers.min", _between(0, MAX_WORKERS), default=0, kind=int),
        "max": get("workers.max", _between(1, MAX_WORKERS), default=10, kind=int),
        "idle_minutes": get("workers.idle_minutes", _between(1, 1440), default=15, kind=int),
        "metrics_interval": get("workers.metrics_interval", _between(1, 60), default=15, kind=int),
        "spot_weight": get("workers.spot_weight", _between(0, 1000), default=4, kind=int),
        "on_demand_weight": get("workers.on_demand_weight", _between(0, 1000), default=1, kind=int),
        "on_demand_base": get("workers.on_demand_base", _between(0, 100000), default=0, kind=int),
        "timezone": get("workers.timezone", _timezone_problem, default="UTC"),
        "off_hours": get("workers.off_hours", _schedule_problem, default=None),
        "on_hours": get("workers.on_hours", _schedule_problem, default=None),
    }
    if None not in (workers["min"], workers["max"]) and workers["min"] > workers["max"]:
        reader.problems.append(f"workers.min: must be <= workers.max ({workers['max']}): {workers['min']!r}")
    if (reader.lookup("workers.off_hours") is None) != (reader.lookup("workers.on_hours") is None):
        reader.problems.append("workers.off_hours: set both off_hours and on_hours, or neither")
    if workers["spot_weight"] == 0 and workers["on_demand_weight"] == 0:
        reader.problems.append("workers.spot_weight: spot_weight and on_demand_weight cannot both be 0")
    if reader.lookup("sizes.worker.count") is not None:
        reader.read.add("sizes.worker.count")
        reader.problems.append("sizes.worker.count: workers follow the backlog: set workers.min, workers.max")
    return workers


def _between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be {low} to {high}"


def _timezone_problem(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "not an IANA time zone (e.g. Europe/Dublin, America/New_York, UTC)"
    return None


def _schedule_problem(value: str) -> str | None:
    if not SCHEDULE.fullmatch(value):
        return "not a schedule of the form cron(minutes hours day-of-month month day-of-week year)"
    fields = value[5:-1].split()
    if "?" not in (fields[2], fields[4]):
        return "cron needs ? in day-of-month or day-of-week, e.g. cron(0 20 ? * MON-FRI *)"
    return None


def _sizes(reader: _Reader) -> dict[str, dict[str, int]]:
    sizes = {}
    for role, defaults in DEFAULT_SIZES.items():
        size = {
            field: reader.get(f"sizes.{role}.{field}", _positive, default=default, kind=int)
            for field, default in defaults.items()
        }
        if size["cpu"] and size["memory"]:
            problem = size_problem(size["cpu"], size["memory"])
            if problem:
                reader.problems.append(f"sizes.{role}: {problem}")
        sizes[role] = size
    return sizes
