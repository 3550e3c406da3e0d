"""The on-disk layout under ROOT, and the small state file that records what is live.

ROOT/current -> .s3sync/releases/<id>    relative symlink, swapped with rename(2)
ROOT/.s3sync/releases/<id>/              complete, verified trees
ROOT/.s3sync/manifests/<id>.json         manifest of each kept release
ROOT/.s3sync/staging/<owner>/            work in progress, never read
ROOT/.s3sync/staging/<owner>.lock        held by the owner while it works
ROOT/.s3sync/trash/                      releases being deleted
ROOT/.s3sync/state.json, ROOT/.s3sync/lock

The volume is not trusted blindly: `current` counts as live only when it names one of the
kept releases exactly; the state folders must be real folders (a symlink or a file in their
place is removed and the folder made again, never followed); release trees are written and
removed only through descriptors opened without following symlinks (s3sync.beneath).
"""

import contextlib
import json
import os
import secrets
import socket
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s3sync.beneath import DIR_FLAGS as _DIR
from s3sync.beneath import Beneath, remove_tree
from s3sync.errors import BadInput, Busy
from s3sync.locking import FileLock, try_lock
from s3sync.manifest import RELEASE_ID, Limits, Manifest, parse
from s3sync.parallel import run_per_folder

CURRENT = "current"
META = ".s3sync"
STATE_FOLDERS = ("releases", "manifests", "staging", "trash")
HISTORY_LENGTH = 50
MAX_STATE_BYTES = 1024**2
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a planted FIFO must not block


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


def read_small(path: Path, limit: int) -> bytes:
    """A regular file's bytes, never through a symlink, and only up to `limit` of them."""
    fd = os.open(path, _READ)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(f"{path} is over {limit} bytes")
    return data


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
        self.meta = root / META
        self.releases = self.meta / "releases"
        self.manifests = self.meta / "manifests"
        self.staging = self.meta / "staging"
        self.trash = self.meta / "trash"
        self.current = root / CURRENT
        self.state_file = self.meta / "state.json"
        self.lock = FileLock(self.meta / "lock", timeout=lock_timeout)
        self.owner = f"{socket.gethostname()}-{os.getpid()}"
        self._last_manifest: Manifest | None = None

    def prepare(self) -> list[str]:
        """Make the state folders; return what had to be repaired (see repair_folders)."""
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"target {self.root} exists and is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.current.exists() and not self.current.is_symlink():
            raise BadInput(f"{self.current} exists and is not a symlink; move it away first")
        return self.repair_folders()

    def repair_folders(self) -> list[str]:
        """Each state folder must be a real folder: whatever else is in its place (a symlink
        out of ROOT, a file) is removed, without following it, and the folder made again."""
        repaired = []
        for rel in (META, *(f"{META}/{name}" for name in STATE_FOLDERS)):
            path = self.root / rel
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                path.mkdir(exist_ok=True)  # another sidecar on this ROOT may make it first
                continue
            if stat.S_ISDIR(mode):
                continue
            path.unlink(missing_ok=True)
            path.mkdir(exist_ok=True)
            repaired.append(f"{rel} was {'a symlink' if stat.S_ISLNK(mode) else 'not a folder'}; made again")
        return repaired

    # -- what is live ----------------------------------------------------------

    def live_release(self) -> str | None:
        """The kept release `current` names, or None: no `current`, or one that points
        anywhere but at a kept release (outside ROOT, at a look-alike)."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        release = target.rpartition("/")[2]
        if target != self.current_target(release) or not self.has_release(release):
            return None
        return release

    def current_problem(self) -> str | None:
        """What is wrong with `current`, when it exists but names none of the kept releases."""
        try:
            target = os.readlink(self.current)
        except FileNotFoundError:
            return None
        except OSError:
            return f"{self.current} is not a symlink"
        if self.live_release() is None:
            return f"{self.current} points at {target!r:.200}, not at a release kept under {self.releases}"
        return None

    @staticmethod
    def current_target(release: str) -> str:
        return f"{META}/releases/{release}"

    def has_release(self, release: str) -> bool:
        """A kept release: a real folder under releases/ with its manifest beside."""
        if not RELEASE_ID.match(release):
            return False
        try:
            folder = os.lstat(self.release_dir(release)).st_mode
            manifest = os.lstat(self.manifests / f"{release}.json").st_mode
        except OSError:
            return False
        return stat.S_ISDIR(folder) and stat.S_ISREG(manifest)

    def release_dir(self, release: str) -> Path:
        return self.releases / release

    def read_state(self) -> State:
        """What state.json says; an empty State when it is missing or unreadable (a damaged
        or planted file must not stop the sidecar: the next swap writes it again)."""
        try:
            raw = json.loads(read_small(self.state_file, MAX_STATE_BYTES))
            history = [LiveRecord(**item) for item in raw.pop("history", [])]
            state = State(**raw, history=history)
        except FileNotFoundError:
            return State()
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            return State()
        if not isinstance(state.generation, int) or not isinstance(state.source, str):
            return State()
        return state

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
            manifest = parse(read_small(path, limits.max_manifest_bytes), limits, str(path))
        except (OSError, BadInput):
            return None
        if manifest.release != release:
            return None
        self._last_manifest = manifest
        return manifest

    # -- the swap -------------------------------------------------------------

    def point_current_at(self, release: str) -> None:
        """Atomically re-point ROOT/current: a reader sees the old tree or the new one."""
        replace_symlink(self.current, self.current_target(release))

    def drop_current(self) -> None:
        """Remove a `current` symlink that names no kept release (never what it points at)."""
        with contextlib.suppress(FileNotFoundError):
            if self.current.is_symlink():
                self.current.unlink()

    def adopt_staging(self, staging: Beneath, release: str) -> None:
        """Move a complete staging folder to releases/<release>, by descriptors."""
        with (
            Beneath.open(self.root, f"{META}/staging") as parent,
            Beneath.open(self.root, f"{META}/releases") as to,
        ):
            os.rename(staging.path.name, release, src_dir_fd=parent.fd, dst_dir_fd=to.fd)

    # -- staging ----------------------------------------------------------------

    @contextlib.contextmanager
    def staging_dir(self):
        """A fresh staging folder (a Beneath), locked by this process for as long as it exists."""
        name = f"{self.owner}-{secrets.token_hex(4)}"
        lock = FileLock(self.staging / f"{name}.lock", timeout=0)
        with self.lock:  # remove_orphans runs under it too: it never sees a half-made claim
            lock.acquire()
            with Beneath.open(self.root, f"{META}/staging") as parent:
                os.mkdir(name, 0o755, dir_fd=parent.fd)
            folder = Beneath.open(self.root, f"{META}/staging/{name}")
        try:
            yield folder
        finally:
            folder.close()
            with (  # a staging folder that did not become a release: swept with the trash
                contextlib.suppress(OSError),
                Beneath.open(self.root, f"{META}/staging") as staging,
                Beneath.open(self.root, f"{META}/trash") as trash,
            ):
                os.rename(name, _trash_name(name), src_dir_fd=staging.fd, dst_dir_fd=trash.fd)
            (self.staging / f"{name}.lock").unlink(missing_ok=True)
            lock.release()

    @contextlib.contextmanager
    def building(self, release: str):
        """Held while this process makes `release`, so N sidecars on one ROOT make it once: the
        others get Busy and find it live on a later poll."""
        claim = self.staging / f"{release}.build.lock"
        fd = try_lock(claim, create=True)
        if fd is None:
            raise Busy(f"release {release} is being made by another sidecar on {self.root}")
        try:
            yield
        finally:
            claim.unlink(missing_ok=True)
            os.close(fd)

    def remove_orphans(self) -> list[str]:
        """Move staging folders whose owner died (their lock is free) to the trash, and remove
        what is neither such a folder nor a lock (a symlink, a stray file) from staging and
        the trash. Folders in the trash are deleted by sweep_trash(), outside the ROOT lock.

        Call with the ROOT lock held.
        """
        removed = []
        with (
            Beneath.open(self.root, f"{META}/staging") as staging,
            Beneath.open(self.root, f"{META}/trash") as trash,
        ):
            for entry in sorted(os.scandir(staging.fd), key=lambda e: e.name):
                name = entry.name.removesuffix(".lock")
                if name.startswith(f"{self.owner}-"):
                    continue  # ours: probing our own lock would drop it
                if entry.is_symlink() or not (entry.is_dir(follow_symlinks=False) or entry.name != name):
                    remove_tree(staging.fd, entry.name)  # never one of ours: removed, not followed
                    removed.append(entry.name)
                    continue
                if entry.name == name and (self.staging / f"{name}.lock").exists():
                    continue  # judged through its lock file
                lock_file = self.staging / f"{name}.lock"
                fd = try_lock(lock_file) if entry.name != name else None
                if entry.name != name and fd is None and lock_file.exists():
                    continue  # a live owner holds it
                with contextlib.suppress(FileNotFoundError):
                    os.rename(name, _trash_name(name), src_dir_fd=staging.fd, dst_dir_fd=trash.fd)
                lock_file.unlink(missing_ok=True)
                if fd is not None:
                    os.close(fd)
                removed.append(name)
            for entry in os.scandir(trash.fd):
                if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
                    remove_tree(trash.fd, entry.name)
        return removed

    def discard_release(self, release: str) -> None:
        """Unlink a release from releases/ at once; sweep_trash() deletes it at leisure."""
        with (
            Beneath.open(self.root, f"{META}/releases") as releases,
            Beneath.open(self.root, f"{META}/trash") as trash,
        ):
            with contextlib.suppress(FileNotFoundError):
                os.rename(release, _trash_name(release), src_dir_fd=releases.fd, dst_dir_fd=trash.fd)
            (self.manifests / f"{release}.json").unlink(missing_ok=True)

    def sweep_trash(self, workers: int = 1, progress: Callable[[], None] = lambda: None) -> int:
        """Delete what is in the trash, folders side by side, without the ROOT lock (nothing
        refers to the trash). One sidecar on a ROOT sweeps at a time; the others return at once.
        Returns how many trash entries were deleted."""
        fd = try_lock(self.meta / "sweep.lock", create=True)
        if fd is None:
            return 0
        try:
            with Beneath.open(self.root, f"{META}/trash") as trash:
                doomed = [entry.name for entry in os.scandir(trash.fd)]
                for name in doomed:
                    _remove_in_parallel(trash, name, workers, progress)
            return len(doomed)
        finally:
            os.close(fd)


def _trash_name(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


def _remove_in_parallel(parent: Beneath, name: str, workers: int, progress: Callable[[], None]) -> None:
    """remove_tree(), with the subfolders of `name` deleted side by side first."""
    try:
        top = Beneath(parent.path / name, os.open(name, _DIR, dir_fd=parent.fd))
    except (FileNotFoundError, NotADirectoryError, OSError):
        remove_tree(parent.fd, name, progress)
        return
    with top:
        subfolders = [[e.name] for e in os.scandir(top.fd) if e.is_dir(follow_symlinks=False)]
        run_per_folder(subfolders, lambda group: remove_tree(top.fd, group[0], progress), workers)
    remove_tree(parent.fd, name, progress)
