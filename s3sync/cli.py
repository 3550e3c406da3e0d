"""Command line: what each command does. The flags and their environment variables are in flags.py."""

import functools
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

from s3sync import logs, status
from s3sync.client import ClientSettings, make_client
from s3sync.errors import BadInput, S3SyncError, one_line
from s3sync.flags import build_parser
from s3sync.inuse import InUseError, libpq_url, releases_in_use
from s3sync.layout import Layout
from s3sync.location import S3Location
from s3sync.manifest import Limits
from s3sync.publish import Publisher, PublishResult
from s3sync.pull import PullSettings
from s3sync.remote import Remote
from s3sync.retention import prune, releases_to_remove
from s3sync.runner import Loop, LoopSettings, Syncer, sync_once

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "health":
        healthy, line = status.judge(args.status_file, args.max_age)
        print(line)
        return EXIT_OK if healthy else EXIT_FAIL
    logs.configure(args.log_level, None if args.log_format == "auto" else args.log_format == "json")
    try:
        return _gc(args) if args.command == "gc" else _dispatch(args)
    except BadInput as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE if isinstance(exc, _UsageError) else EXIT_FAIL
    except S3SyncError as exc:
        _say(f"error: {exc}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line whatever happened; the traceback only when asked for
        if getattr(args, "log_level", None) == "debug":
            traceback.print_exc()
        _say(f"error: {one_line(exc)}")
        return EXIT_FAIL


class _UsageError(BadInput):
    pass


def _say(line: str) -> None:
    print(f"s3sync: {line}", file=sys.stderr)


def _dispatch(args) -> int:
    limits = Limits(args.max_files, args.max_bytes, args.max_manifest_bytes, args.max_path_depth)
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


def _in_use_hook(args) -> Callable[[], set[str]] | None:
    if not args.in_use_database:
        return None
    try:
        libpq_url(args.in_use_database)  # a malformed URL is refused before anything runs
    except InUseError as exc:
        raise _UsageError(str(exc)) from None
    return functools.partial(releases_in_use, args.in_use_database, args.bundle_name)


def _gc(args) -> int:
    """One collection, as the loop runs it: print each release deleted (or, dry, to delete)."""
    if args.target is None:
        raise _UsageError("--target is required (or set S3SYNC_TARGET)")
    layout = Layout(args.target, lock_timeout=args.lock_timeout)
    if not layout.releases.is_dir():
        raise _UsageError(f"{args.target} is not an s3sync ROOT (no {layout.releases})")
    hook = _in_use_hook(args)
    in_use = frozenset(hook()) if hook else frozenset()
    with layout.lock:
        if args.dry_run:
            doomed = releases_to_remove(layout, args.keep, args.grace, time.time(), in_use)
        else:
            doomed = prune(layout, args.keep, args.grace, time.time(), in_use)
    if not args.dry_run:
        layout.sweep_trash(workers=args.fs_concurrency)
    for release in doomed:
        print(f"{'would remove' if args.dry_run else 'removed'} {release}")
    kept = sorted({entry.name for entry in layout.releases.iterdir()} - set(doomed))
    print(f"kept {len(kept)}: {' '.join(kept)}" + (f" (in use: {' '.join(sorted(in_use))})" if hook else ""))
    return EXIT_OK


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

    def publish_logged() -> bool:
        try:
            result = publish_once()
        except S3SyncError as exc:
            log.error("publish failed", error=str(exc), retry_in=args.retry_interval)
            return False
        log.info(
            "published" if result.published else "unchanged",
            release=result.release,
            generation=result.generation,
        )
        return True

    stop = _stop_on_signals()
    watch(args.directory, excludes, args.debounce, args.retry_interval, publish_logged, stop)
    return EXIT_OK


def _report_publish(result: PublishResult, dry_run: bool) -> None:
    if result.damaged_latest:
        _say(
            f"warning: LATEST.json could not be read ({result.damaged_latest}); "
            f"{'it would be' if dry_run else 'it is'} replaced, the history carried on at generation "
            f"{result.generation}"
        )
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
    settings = PullSettings(
        limits,
        args.concurrency,
        args.request_cost,
        args.keep,
        args.grace,
        args.adopt_lineage,
        args.fs_concurrency,
    )
    layout = Layout(args.target, lock_timeout=args.lock_timeout)
    syncer = Syncer(remote, layout, settings, args.release, log, _in_use_hook(args))
    if getattr(args, "once", False):
        ok, line = sync_once(syncer, args.timeout, log)
        _say(line) if not ok else print(f"s3sync: {line}")
        return EXIT_OK if ok else EXIT_FAIL
    loop_settings = LoopSettings(
        args.interval, args.status_file, args.metrics_interval, not args.no_metrics, args.gc_interval
    )
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
