"""The on-disk layout under ROOT, and the small state file that records what is live.

ROOT/current -> .s3sync/releases/<id>    relative symlink, swapped with rename(2)
ROOT/.s3sync/releases/<id>/              complete, verified trees
ROOT/.s3sync/manifests/<id>.json         manifest of each kept release
ROOT/.s3sync/staging/<owner>/            work in progress, never read
ROOT/.s3sync/staging/<owner>.lock        held by the owner while it works
ROOT/.s3sync/trash/                      releases being deleted
ROOT/.s3sync/state.json, ROOT/.s3sync/lock
"""

import contextlib
import json
import os
import secrets
import shutil
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s3sync.errors import BadInput
from s3sync.locking import FileLock, try_lock
from s3sync.manifest import Limits, Manifest, parse

CURRENT = "current"
HISTORY_LENGTH = 50


@dataclass
class LiveRecord:
    release: str
    generation: int
    live_from: float
    live_until: float | None = None


@dataclass
class State:
    source: str = ""
    release: str = ""
    generation: int = -1
    history: list[LiveRecord] = field(default_factory=list)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not also collect half-written files
        raise


def replace_symlink(link: Path, target: str | Path) -> None:
    """Make `link` point at `target` with symlink + rename(2): readers see the old target or the new."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}")
    os.symlink(target, tmp)
    try:
        os.rename(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Layout:
    def __init__(self, root: Path, lock_timeout: float = 60.0):
        self.root = root
        self.meta = root / ".s3sync"
        self.releases = self.meta / "releases"
        self.manifests = self.meta / "manifests"
        self.staging = self.meta / "staging"
        self.trash = self.meta / "trash"
        self.current = root / CURRENT
        self.state_file = self.meta / "state.json"
        self.lock = FileLock(self.meta / "lock", timeout=lock_timeout)
        self.owner = f"{socket.gethostname()}-{os.getpid()}"
        self._last_manifest: Manifest | None = None

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"target {self.root} exists and is not a directory")
        for folder in (self.releases, self.manifests, self.staging, self.trash):
            folder.mkdir(parents=True, exist_ok=True)
        if self.current.exists() and not self.current.is_symlink():
            raise BadInput(f"{self.current} exists and is not a symlink; move it away first")

    # -- what is live ----------------------------------------------------------

    def live_release(self) -> str | None:
        """The release id `current` points at, or None."""
        try:
            target = os.readlink(self.current)
        except (FileNotFoundError, OSError):
            return None
        return Path(target).name

    def release_dir(self, release: str) -> Path:
        return self.releases / release

    def read_state(self) -> State:
        try:
            raw = json.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            return State()
        history = [LiveRecord(**item) for item in raw.pop("history", [])]
        return State(**raw, history=history)

    def write_state(self, state: State) -> None:
        write_atomic(self.state_file, json.dumps(asdict(state), indent=1).encode())

    def save_manifest(self, manifest: Manifest, raw: bytes | None = None) -> None:
        """Keep a release's manifest: the published bytes when there are any (no re-encoding)."""
        write_atomic(self.manifests / f"{manifest.release}.json", raw or manifest.to_json_bytes())
        self._last_manifest = manifest

    def load_manifest(self, release: str, limits: Limits) -> Manifest | None:
        # The manifest saved last is the live one on the next poll: keep it parsed.
        if self._last_manifest is not None and self._last_manifest.release == release:
            return self._last_manifest
        path = self.manifests / f"{release}.json"
        try:
            manifest = parse(path.read_bytes(), limits, str(path))
        except (FileNotFoundError, BadInput):
            return None
        self._last_manifest = manifest
        return manifest

    # -- the swap -------------------------------------------------------------

    def point_current_at(self, release: str) -> None:
        """Atomically re-point ROOT/current: a reader sees the old tree or the new one."""
        replace_symlink(self.current, os.path.join(".s3sync", "releases", release))

    # -- staging ----------------------------------------------------------------

    @contextlib.contextmanager
    def staging_dir(self):
        """A fresh staging folder, locked by this process for as long as it exists."""
        name = f"{self.owner}-{secrets.token_hex(4)}"
        lock = FileLock(self.staging / f"{name}.lock", timeout=0)
        folder = self.staging / name
        with self.lock:  # remove_orphans runs under it too: it never sees a half-made claim
            lock.acquire()
            folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            (self.staging / f"{name}.lock").unlink(missing_ok=True)
            lock.release()

    def remove_orphans(self) -> list[str]:
        """Delete staging folders whose owner died (their lock is free) and leftover trash.

        Call with the ROOT lock held.
        """
        removed = []
        for item in sorted(self.staging.iterdir()):
            name = item.name.removesuffix(".lock")
            if name.startswith(f"{self.owner}-"):
                continue  # ours: probing our own lock would drop it
            if item.suffix != ".lock" and (self.staging / f"{name}.lock").exists():
                continue  # judged through its lock file
            lock_file = self.staging / f"{name}.lock"
            fd = try_lock(lock_file) if lock_file.exists() else None
            if lock_file.exists() and fd is None:
                continue  # a live owner holds it
            shutil.rmtree(self.staging / name, ignore_errors=True)
            lock_file.unlink(missing_ok=True)
            if fd is not None:
                os.close(fd)
            removed.append(name)
        for item in self.trash.iterdir():
            shutil.rmtree(item, ignore_errors=True)
        return removed

    def discard_release(self, release: str) -> None:
        """Unlink a release from releases/ at once, then delete it at leisure."""
        doomed = self.trash / f"{release}-{secrets.token_hex(4)}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.release_dir(release), doomed)
        (self.manifests / f"{release}.json").unlink(missing_ok=True)
        shutil.rmtree(doomed, ignore_errors=True)
