"""`publish --watch`: republish on local edits, debounced (the local development loop)."""

import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from s3sync.localtree import is_excluded


class _Changes(FileSystemEventHandler):
    def __init__(self, root: Path, excludes: tuple[str, ...]):
        self.root = root
        self.excludes = excludes
        self.last_change = 0.0
        self.pending = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if all(self._ignored(p) for p in paths if p):
            return
        self.last_change = time.monotonic()
        self.pending.set()

    def _ignored(self, path: str) -> bool:
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return True
        return rel == "." or is_excluded(rel, self.excludes)


def watch(
    root: Path,
    excludes: tuple[str, ...],
    debounce: float,
    retry_interval: float,
    publish: Callable[[], bool],
    stop: threading.Event,
) -> None:
    """Publish once, then again each time the tree has been quiet for `debounce` seconds.
    A failed publish (S3 unreachable, bucket missing) is tried again after `retry_interval`
    seconds even if nothing changes, so the last edit is never left unpublished."""
    changes = _Changes(root.resolve(), excludes)
    observer = Observer()
    observer.schedule(changes, str(root.resolve()), recursive=True)
    observer.start()
    try:
        retry_at = None if publish() else time.monotonic() + retry_interval
        while not stop.is_set():
            if retry_at is not None and time.monotonic() >= retry_at:
                changes.pending.set()
            if not changes.pending.wait(0.2):
                continue
            quiet = time.monotonic() - changes.last_change
            if quiet < debounce:
                stop.wait(debounce - quiet)
                continue
            changes.pending.clear()
            retry_at = None if publish() else time.monotonic() + retry_interval
    finally:
        observer.stop()
        observer.join()
