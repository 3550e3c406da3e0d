"""Command line. Every flag can also be set by the environment variable named in its help."""

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from s3sync import __version__, logs, status
from s3sync.client import ClientSettings, make_client
from s3sync.errors import BadInput, S3SyncError
from s3sync.layout import Layout
from s3sync.location import S3Location
from s3sync.manifest import Limits
from s3sync.publish import Publisher, PublishResult
from s3sync.pull import PullSettings
from s3sync.remote import MODES, Remote
from s3sync.runner import Loop, LoopSettings, Syncer, sync_once

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _positive(kind):
    def convert(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return value

    convert.__name__ = f"positive {kind.__name__}"
    return convert


def _non_negative(kind):
    def convert(text: str):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
        return value

    convert.__name__ = f"non-negative {kind.__name__}"
    return convert


def _flag(parser, name: str, env: str, help: str, default=None, **kwargs) -> None:
    """A flag whose default comes from `env` when set; the help names both."""
    value = os.environ.get(env, default)
    if kwargs.get("action") == "store_true":
        value = str(value).lower() in ("1", "true", "yes", "on")
    elif kwargs.get("action") == "append" and isinstance(value, str):
        value = [value]
    shown = f"default {default}" if default not in (None, False) else "no default"
    parser.add_argument(name, default=value, help=f"{help} [env {env}; {shown}]", **kwargs)


def _common(parser) -> None:
    _flag(
        parser,
        "--log-level",
        "S3SYNC_LOG_LEVEL",
        "debug, info, warning or error",
        "info",
        choices=["debug", "info", "warning", "error"],
    )
    _flag(
        parser,
        "--log-format",
        "S3SYNC_LOG_FORMAT",
        "json, console, or auto (console on a TTY)",
        "auto",
        choices=["auto", "json", "console"],
    )
    _flag(
        parser,
        "--s3-timeout",
        "S3SYNC_S3_TIMEOUT",
        "seconds for each S3 connect and read",
        "10",
        type=_positive(float),
    )
    _flag(
        parser,
        "--s3-retries",
        "S3SYNC_S3_RETRIES",
        "attempts per S3 request, with backoff",
        "5",
        type=_positive(int),
    )
    _flag(parser, "--concurrency", "S3SYNC_CONCURRENCY", "parallel S3 transfers", "16", type=_positive(int))
    _flag(
        parser,
        "--max-files",
        "S3SYNC_MAX_FILES",
        "refuse releases with more files",
        "100000",
        type=_positive(int),
    )
    _flag(
        parser,
        "--max-bytes",
        "S3SYNC_MAX_BYTES",
        "refuse releases with more bytes in all",
        str(10 * 1024**3),
        type=_positive(int),
    )
    _flag(
        parser,
        "--max-manifest-bytes",
        "S3SYNC_MAX_MANIFEST_BYTES",
        "refuse larger manifests",
        str(64 * 1024**2),
        type=_positive(int),
    )


def _source(parser, required: bool = True) -> None:
    _flag(parser, "--source", "S3SYNC_SOURCE", "s3://bucket/prefix holding the releases", None)
    parser.set_defaults(source_required=required)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3sync",
        description="Publish DAG folders to S3 as immutable releases, and pull them into a "
        "live tree that is swapped atomically.",
    )
    parser.add_argument("--version", action="version", version=f"s3sync {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    publish = commands.add_parser("publish", help="publish a folder as a release")
    publish.add_argument("directory", type=Path, metavar="DIR")
    publish.add_argument("destination", metavar="s3://bucket/prefix")
    _flag(
        publish,
        "--exclude",
        "S3SYNC_EXCLUDE",
        "glob to skip, repeatable (env: comma-separated); __pycache__ and *.pyc are always skipped",
        None,
        action="append",
    )
    publish.add_argument("--dry-run", action="store_true", help="show the diff, upload nothing")
    publish.add_argument("--allow-empty", action="store_true", help="allow publishing an empty tree")
    publish.add_argument("--watch", action="store_true", help="republish on every local edit")
    _flag(
        publish,
        "--debounce",
        "S3SYNC_DEBOUNCE",
        "with --watch: quiet seconds before publishing",
        "1.0",
        type=_non_negative(float),
    )
    _common(publish)

    releases = commands.add_parser("releases", help="list published releases")
    _source(releases)
    _common(releases)

    rollback = commands.add_parser("rollback", help="point LATEST at an earlier release")
    rollback.add_argument("release", metavar="RELEASE")
    _source(rollback)
    _common(rollback)

    for name, text in (
        ("run", "poll forever and keep TARGET/current on the newest release"),
        ("sync", "like run; with --once, converge once and exit (init containers)"),
    ):
        command = commands.add_parser(name, help=text)
        _source(command)
        _flag(
            command,
            "--target",
            "S3SYNC_TARGET",
            "ROOT folder; ROOT/current is the live tree",
            None,
            type=Path,
        )
        _flag(command, "--interval", "S3SYNC_INTERVAL", "seconds between polls", "10", type=_positive(float))
        _flag(command, "--release", "S3SYNC_RELEASE", "pin this release id instead of following LATEST", None)
        _flag(
            command,
            "--mode",
            "S3SYNC_MODE",
            "manifest (LATEST.json), listing (plain prefix), or auto (listing when there is no LATEST.json)",
            "auto",
            choices=list(MODES),
        )
        _flag(
            command,
            "--keep",
            "S3SYNC_KEEP",
            "old releases kept on disk (the live one included)",
            "3",
            type=_positive(int),
        )
        _flag(
            command,
            "--grace",
            "S3SYNC_GRACE",
            "seconds a replaced release is kept for readers still inside it",
            "600",
            type=_non_negative(float),
        )
        _flag(
            command,
            "--pack-min-files",
            "S3SYNC_PACK_MIN_FILES",
            "download the release pack instead of single files from this many changed files",
            "50",
            type=_positive(int),
        )
        _flag(
            command,
            "--lock-timeout",
            "S3SYNC_LOCK_TIMEOUT",
            "seconds to wait for ROOT's lock",
            "60",
            type=_positive(float),
        )
        _flag(
            command,
            "--status-file",
            "S3SYNC_STATUS_FILE",
            "where the loop records its health",
            "/tmp/s3sync/status.json",
            type=Path,
        )
        _flag(
            command,
            "--metrics-interval",
            "S3SYNC_METRICS_INTERVAL",
            "seconds between release-age metrics",
            "60",
            type=_positive(float),
        )
        _flag(
            command,
            "--no-metrics",
            "S3SYNC_NO_METRICS",
            "do not print CloudWatch EMF metric lines",
            False,
            action="store_true",
        )
        if name == "sync":
            command.add_argument(
                "--once", action="store_true", help="exit 0 once a verified release is live, 1 if that fails"
            )
            _flag(
                command,
                "--timeout",
                "S3SYNC_TIMEOUT",
                "with --once: seconds to keep retrying transient errors",
                "300",
                type=_positive(float),
            )
        _common(command)

    health = commands.add_parser("health", help="exit 0 if the sync loop is alive and recent")
    _flag(
        health,
        "--status-file",
        "S3SYNC_STATUS_FILE",
        "the loop's status file",
        "/tmp/s3sync/status.json",
        type=Path,
    )
    _flag(
        health,
        "--max-age",
        "S3SYNC_HEALTH_MAX_AGE",
        "seconds since the last successful poll",
        "300",
        type=_positive(float),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "health":
        healthy, line = status.judge(args.status_file, args.max_age)
        print(line)
        return EXIT_OK if healthy else EXIT_FAIL
    logs.configure(args.log_level, None if args.log_format == "auto" else args.log_format == "json")
    try:
        return _dispatch(args)
    except BadInput as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE if isinstance(exc, _UsageError) else EXIT_FAIL
    except S3SyncError as exc:
        _say(f"error: {exc}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


class _UsageError(BadInput):
    pass


def _say(line: str) -> None:
    print(f"s3sync: {line}", file=sys.stderr)


def _dispatch(args) -> int:
    limits = Limits(args.max_files, args.max_bytes, args.max_manifest_bytes)
    client = make_client(ClientSettings(args.s3_timeout, args.s3_retries, args.concurrency))
    if args.command == "publish":
        return _publish(args, client, limits)
    location = _location(args.source)
    if args.command == "releases":
        return _releases(Publisher(client, location, limits))
    if args.command == "rollback":
        manifest = Publisher(client, location, limits).rollback(args.release)
        print(f"LATEST -> {manifest.release} (generation {manifest.generation})")
        return EXIT_OK
    return _pull(args, client, location, limits)


def _location(url: str | None) -> S3Location:
    if not url:
        raise _UsageError("--source is required (or set S3SYNC_SOURCE)")
    try:
        return S3Location.parse(url)
    except BadInput as exc:
        raise _UsageError(str(exc)) from None


def _publish(args, client, limits: Limits) -> int:
    location = _location(args.destination)
    excludes = tuple(p for item in (args.exclude or []) for p in str(item).split(",") if p)
    publisher = Publisher(client, location, limits, args.concurrency)
    log = logs.get_logger(command="publish", destination=str(location))

    def publish_once() -> PublishResult:
        result = publisher.publish(
            args.directory, excludes, args.dry_run, args.allow_empty, meta={"source_dir": str(args.directory)}
        )
        _report_publish(result, args.dry_run)
        return result

    if not args.watch:
        publish_once()
        return EXIT_OK
    if args.dry_run:
        raise _UsageError("--watch and --dry-run do not combine")
    from s3sync.watch import watch

    def publish_logged() -> None:
        try:
            result = publish_once()
            log.info(
                "published" if result.published else "unchanged",
                release=result.release,
                generation=result.generation,
            )
        except S3SyncError as exc:
            log.error("publish failed", error=str(exc))

    stop = _stop_on_signals()
    watch(args.directory, excludes, args.debounce, publish_logged, stop)
    return EXIT_OK


def _report_publish(result: PublishResult, dry_run: bool) -> None:
    diff = result.diff
    for mark, paths in (("+", diff.added), ("~", diff.changed), ("-", diff.removed)):
        for path in paths:
            print(f"{mark} {path}")
    counts = f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed"
    if dry_run:
        print(
            f"dry run: release {result.release} would be generation {result.generation}; {counts}; "
            f"{result.uploaded} objects ({result.uploaded_bytes} bytes) to upload"
        )
    elif result.published:
        print(
            f"published release {result.release} generation {result.generation}; {counts}; "
            f"uploaded {result.uploaded} objects ({result.uploaded_bytes} bytes)"
        )
    else:
        print(f"unchanged: release {result.release} is already LATEST (generation {result.generation})")


def _releases(publisher: Publisher) -> int:
    pointer = publisher.pointer()
    latest = pointer.manifest.release if pointer.manifest else None
    print(f"{'RELEASE':<22} {'FIRST GEN':>10} {'FILES':>7} {'BYTES':>12}  CREATED")
    for manifest in publisher.list_releases():
        mark = "  <- LATEST" if manifest.release == latest else ""
        print(
            f"{manifest.release:<22} {manifest.generation:>10} {len(manifest.files):>7} "
            f"{manifest.total_bytes:>12}  {manifest.created_at}{mark}"
        )
    return EXIT_OK


def _pull(args, client, location: S3Location, limits: Limits) -> int:
    if args.target is None:
        raise _UsageError("--target is required (or set S3SYNC_TARGET)")
    log = logs.get_logger(source=str(location), target=str(args.target))
    remote = Remote(client, location, limits, args.mode, download_attempts=args.s3_retries)
    settings = PullSettings(limits, args.concurrency, args.pack_min_files, args.keep, args.grace)
    layout = Layout(args.target, lock_timeout=args.lock_timeout)
    syncer = Syncer(remote, layout, settings, args.release, log)
    if getattr(args, "once", False):
        ok, line = sync_once(syncer, args.timeout, log)
        _say(line) if not ok else print(f"s3sync: {line}")
        return EXIT_OK if ok else EXIT_FAIL
    loop_settings = LoopSettings(args.interval, args.status_file, args.metrics_interval, not args.no_metrics)
    loop = Loop(syncer, loop_settings, str(location), log)
    stop = _stop_on_signals()
    threading.Thread(target=lambda: (stop.wait(), loop.stop.set()), daemon=True).start()
    log.info("starting", interval=args.interval, pinned=args.release, mode=args.mode)
    return loop.run()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
