"""Helpers to make local trees, run the CLI, and inspect a sync ROOT."""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from s3sync.cli import main


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `root` (following `root` itself)."""
    found = {}
    for top, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(top) / name
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def tree_digests(files: dict[str, bytes | str]) -> dict[str, str]:
    return {
        rel: hashlib.sha256(c.encode() if isinstance(c, str) else c).hexdigest() for rel, c in files.items()
    }


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def cli_process(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "s3sync", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def live_snapshot(target: Path) -> dict[str, str]:
    return snapshot((target / "current").resolve())


def staging_entries(target: Path) -> list[str]:
    staging = target / ".s3sync" / "staging"
    return sorted(os.listdir(staging)) if staging.exists() else []


def make_syncer(source: str, target: Path, pinned: str | None = None, mode: str = "auto", **settings):
    """The real sync path, in process, so a test can drive one poll at a time."""
    from s3sync.client import ClientSettings, make_client
    from s3sync.layout import Layout
    from s3sync.location import S3Location
    from s3sync.logs import get_logger
    from s3sync.manifest import Limits
    from s3sync.pull import PullSettings
    from s3sync.remote import Remote
    from s3sync.runner import Syncer

    remote = Remote(make_client(ClientSettings()), S3Location.parse(source), Limits(), mode)
    syncer = Syncer(remote, Layout(target), PullSettings(**settings), pinned, get_logger())
    syncer.prepare()
    return syncer


def wait_for(predicate, timeout: float = 30, step: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)
