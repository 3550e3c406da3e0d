"""Every flag of every command, each with the environment variable that can set it.

A flag on the command line wins over its variable; the variable wins over the default.
docs/s3sync.md lists the same table (a test keeps the two in step).
"""

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

from s3sync import __version__
from s3sync.remote import MODES
from s3sync.status import DEFAULT_MAX_AGE, DEFAULT_STATUS_FILE


def number(kind: type, minimum: float, inclusive: bool):
    """An argparse type: `kind` values >= minimum (inclusive) or > minimum."""

    def convert(text: str):
        value = kind(text)
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum}: {text!r}")
        return value

    convert.__name__ = kind.__name__
    return convert


def lineage_choice(text: str) -> str:
    """An argparse type for --adopt-lineage: a lineage id, or one of the words it takes."""
    if text in ("any", "none", "listing") or re.fullmatch(r"[0-9a-f]{16}", text):
        return text
    raise argparse.ArgumentTypeError(
        f"want a lineage (16 lowercase hex characters), none, listing or any: {text!r}"
    )


POSITIVE_INT = number(int, 0, inclusive=False)
POSITIVE_FLOAT = number(float, 0, inclusive=False)
NON_NEGATIVE_FLOAT = number(float, 0, inclusive=True)


@dataclass(frozen=True)
class Flag:
    name: str
    env: str
    help: str
    default: str | None = None
    type: object = str
    choices: tuple[str, ...] | None = None
    action: str | None = None

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        value: object = os.environ.get(self.env, self.default)
        shown = f"default {self.default}" if self.default is not None else "no default"
        options: dict = {"default": value, "help": f"{self.help} [env {self.env}; {shown}]"}
        if self.action == "store_true":
            options["default"] = str(value).lower() in ("1", "true", "yes", "on")
            options["action"] = "store_true"
        else:
            options["type"] = self.type
            if self.choices:
                options["choices"] = self.choices
            if self.action == "append":
                options["action"] = "append"
                options["default"] = [value] if isinstance(value, str) else value
        parser.add_argument(self.name, **options)


SOURCE = Flag("--source", "S3SYNC_SOURCE", "s3://bucket/prefix holding the releases")
STATUS_FILE = Flag(
    "--status-file",
    "S3SYNC_STATUS_FILE",
    "where the sync loop records its health",
    str(DEFAULT_STATUS_FILE),
    Path,
)

COMMON = (
    Flag(
        "--log-level",
        "S3SYNC_LOG_LEVEL",
        "debug, info, warning or error",
        "info",
        choices=("debug", "info", "warning", "error"),
    ),
    Flag(
        "--log-format",
        "S3SYNC_LOG_FORMAT",
        "json, console, or auto (console on a TTY)",
        "auto",
        choices=("auto", "json", "console"),
    ),
    Flag("--s3-timeout", "S3SYNC_S3_TIMEOUT", "seconds for each S3 connect and read", "10", POSITIVE_FLOAT),
    Flag("--s3-retries", "S3SYNC_S3_RETRIES", "attempts per S3 request, with backoff", "5", POSITIVE_INT),
    Flag("--concurrency", "S3SYNC_CONCURRENCY", "parallel S3 transfers", "16", POSITIVE_INT),
    Flag(
        "--fs-concurrency",
        "S3SYNC_FS_CONCURRENCY",
        "file-system changes (links, creations, deletions) at once, folders side by side: "
        "on EFS each is a network round trip",
        "32",
        POSITIVE_INT,
    ),
    Flag("--max-files", "S3SYNC_MAX_FILES", "refuse releases with more files", "100000", POSITIVE_INT),
    Flag(
        "--max-bytes",
        "S3SYNC_MAX_BYTES",
        "refuse releases with more bytes in all",
        str(10 * 1024**3),
        POSITIVE_INT,
    ),
    Flag(
        "--max-manifest-bytes",
        "S3SYNC_MAX_MANIFEST_BYTES",
        "refuse larger manifests",
        str(16 * 1024**2),
        POSITIVE_INT,
    ),
    Flag(
        "--max-path-depth",
        "S3SYNC_MAX_PATH_DEPTH",
        "refuse releases with a path of more folders and file than this",
        "64",
        POSITIVE_INT,
    ),
)

PUBLISH = (
    Flag(
        "--exclude",
        "S3SYNC_EXCLUDE",
        "glob to skip, repeatable (env: comma-separated); __pycache__ and *.pyc are always skipped",
        action="append",
    ),
    Flag(
        "--debounce",
        "S3SYNC_DEBOUNCE",
        "with --watch: quiet seconds before publishing",
        "1.0",
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--retry-interval",
        "S3SYNC_RETRY_INTERVAL",
        "with --watch: seconds before a failed publish is tried again",
        "10",
        NON_NEGATIVE_FLOAT,
    ),
)

TARGET = Flag("--target", "S3SYNC_TARGET", "ROOT folder; ROOT/current is the live tree", type=Path)
LOCK_TIMEOUT = Flag(
    "--lock-timeout", "S3SYNC_LOCK_TIMEOUT", "seconds to wait for ROOT's lock", "60", POSITIVE_FLOAT
)
RETENTION = (
    Flag("--keep", "S3SYNC_KEEP", "releases kept on disk, the live one included", "3", POSITIVE_INT),
    Flag(
        "--grace",
        "S3SYNC_GRACE",
        "seconds a replaced release is kept for readers still inside it",
        "600",
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--in-use-database",
        "S3SYNC_IN_USE_DATABASE",
        "Airflow's metadata DB URL (postgresql://...); releases its queued and running DAG runs and "
        "latest DAG versions use are kept, and nothing is deleted while it cannot be read",
    ),
    Flag(
        "--bundle-name",
        "S3SYNC_BUNDLE_NAME",
        "with --in-use-database: the name of the DAG bundle serving this ROOT",
        "dags",
    ),
)

PULL = (
    SOURCE,
    TARGET,
    Flag("--interval", "S3SYNC_INTERVAL", "seconds between polls", "10", POSITIVE_FLOAT),
    Flag("--release", "S3SYNC_RELEASE", "pin this release id instead of following LATEST"),
    Flag(
        "--adopt-lineage",
        "S3SYNC_ADOPT_LINEAGE",
        "follow LATEST.json into this other history: its lineage, none (a LATEST.json without one), "
        "listing (a plain prefix) or any (every new history; local development only)",
        type=lineage_choice,
    ),
    Flag(
        "--mode",
        "S3SYNC_MODE",
        "manifest (LATEST.json), listing (plain prefix), or auto (listing when there is no LATEST.json)",
        "auto",
        choices=MODES,
    ),
    *RETENTION,
    Flag(
        "--gc-interval",
        "S3SYNC_GC_INTERVAL",
        "seconds between collections of old releases when no new release arrives",
        "60",
        POSITIVE_FLOAT,
    ),
    Flag(
        "--request-cost",
        "S3SYNC_REQUEST_COST",
        "what one S3 GET costs, in bytes of transfer time; weighs the release pack against single GETs",
        "1048576",
        POSITIVE_INT,
    ),
    LOCK_TIMEOUT,
    STATUS_FILE,
    Flag(
        "--metrics-interval",
        "S3SYNC_METRICS_INTERVAL",
        "seconds between release-age metrics",
        "60",
        POSITIVE_FLOAT,
    ),
    Flag(
        "--no-metrics", "S3SYNC_NO_METRICS", "do not print CloudWatch EMF metric lines", action="store_true"
    ),
)

SYNC_ONCE = Flag(
    "--timeout", "S3SYNC_TIMEOUT", "with --once: seconds to keep retrying S3 errors", "300", POSITIVE_FLOAT
)
HEALTH = (
    STATUS_FILE,
    Flag(
        "--max-age",
        "S3SYNC_HEALTH_MAX_AGE",
        "seconds since the last successful poll",
        f"{DEFAULT_MAX_AGE:g}",
        POSITIVE_FLOAT,
    ),
)


def _add(parser: argparse.ArgumentParser, *groups: tuple[Flag, ...]) -> None:
    for group in groups:
        for flag in group:
            flag.add_to(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3sync",
        description="Publish DAG folders to S3 as immutable releases, and pull them into a live "
        "tree that is swapped atomically.",
    )
    parser.add_argument("--version", action="version", version=f"s3sync {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    publish = commands.add_parser("publish", help="publish a folder as a release")
    publish.add_argument("directory", type=Path, metavar="DIR")
    publish.add_argument("destination", metavar="s3://bucket/prefix")
    publish.add_argument("--dry-run", action="store_true", help="show the diff, upload nothing")
    publish.add_argument("--allow-empty", action="store_true", help="allow publishing an empty tree")
    publish.add_argument("--watch", action="store_true", help="republish after every local edit")
    _add(publish, PUBLISH, COMMON)

    releases = commands.add_parser("releases", help="list published releases")
    _add(releases, (SOURCE,), COMMON)

    rollback = commands.add_parser("rollback", help="point LATEST at an earlier release")
    rollback.add_argument("release", metavar="RELEASE")
    _add(rollback, (SOURCE,), COMMON)

    run = commands.add_parser("run", help="poll forever, keeping TARGET/current on the newest release")
    _add(run, PULL, COMMON)

    sync = commands.add_parser("sync", help="like run; with --once, converge once and exit")
    sync.add_argument("--once", action="store_true", help="exit 0 once a verified release is live, else 1")
    _add(sync, PULL, (SYNC_ONCE,), COMMON)

    gc = commands.add_parser("gc", help="delete old releases under TARGET once, as the sync loop does")
    gc.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    _add(gc, (TARGET, *RETENTION, LOCK_TIMEOUT), COMMON)

    health = commands.add_parser("health", help="exit 0 if the sync loop is alive and recent")
    _add(health, HEALTH)
    return parser
