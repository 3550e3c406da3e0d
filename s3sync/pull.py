"""Turn a fetched manifest into the live tree: stage, verify, swap. The sync protocol.

1. Files whose content is already in the live release are hard-linked from it.
2. The rest come from the release's pack or as single objects in parallel, whichever
   costs less; every byte is verified before it counts.
3. Under the ROOT lock: re-check the release is newer than what is live, move the
   complete staging folder to releases/<id>, swap `current` with rename(2).
"""

import gzip
import math
import os
import stat
import tarfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError

from s3sync.errors import S3SyncError, TargetError, TransientError, VerificationError
from s3sync.layout import HISTORY_LENGTH, Layout, LiveRecord, State
from s3sync.manifest import FileEntry, Limits, Manifest
from s3sync.pack import extract_pack
from s3sync.remote import Fetched, Remote


@dataclass(frozen=True)
class PullSettings:
    limits: Limits = field(default_factory=Limits)
    concurrency: int = 16
    request_cost: int = 1024**2  # one GET's latency, counted as bytes of transfer time
    keep: int = 3
    grace: float = 600.0


@dataclass(frozen=True)
class Outcome:
    action: str  # "unchanged", "swapped" or "older" (remote is behind what is live)
    release: str
    generation: int
    files_fetched: int = 0
    bytes_fetched: int = 0
    files_linked: int = 0
    used_pack: bool = False
    pack_problem: str | None = None  # why the pack was given up for single GETs


def is_newer(state: State, fetched: Fetched, pinned: bool) -> bool:
    """`current` never moves backwards within one source; a pin is an explicit override."""
    if pinned or state.source != fetched.source_id:
        return True
    return fetched.manifest.generation > state.generation


def apply(
    fetched: Fetched,
    remote: Remote,
    layout: Layout,
    settings: PullSettings,
    pinned: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> Outcome:
    """Make `fetched` live unless it already is or is older. The live tree changes only by
    the final rename: any error before it leaves the last good release live."""
    try:
        return _apply(fetched, remote, layout, settings, pinned, progress)
    except OSError as exc:  # S3's transport errors arrive as TransientError: this is local disk
        raise TargetError(f"cannot write under {layout.root}: {exc}") from None


def _apply(
    fetched: Fetched,
    remote: Remote,
    layout: Layout,
    settings: PullSettings,
    pinned: bool,
    progress: Callable[[], None],
) -> Outcome:
    manifest = fetched.manifest
    if layout.live_release() == manifest.release:
        _note_generation(layout, fetched)
        return Outcome("unchanged", manifest.release, manifest.generation)
    if not is_newer(layout.read_state(), fetched, pinned):
        return Outcome("older", manifest.release, manifest.generation)
    if layout.release_dir(manifest.release).is_dir():
        with layout.lock:
            return _swap(
                layout, fetched, pinned, None, Outcome("swapped", manifest.release, manifest.generation)
            )
    with layout.staging_dir() as staging:
        reusable = _reusable_files(layout, layout.live_release(), settings.limits)
        outcome = stage(fetched, remote, staging, settings, reusable, progress)
        layout.save_manifest(manifest, fetched.raw)
        with layout.lock:
            return _swap(layout, fetched, pinned, staging, outcome)


def _swap(layout: Layout, fetched: Fetched, pinned: bool, staging: Path | None, outcome: Outcome) -> Outcome:
    """Make the release live. Call with the ROOT lock held."""
    manifest = fetched.manifest
    state = layout.read_state()
    if layout.live_release() == manifest.release:  # another sidecar on this ROOT got there first
        return Outcome("unchanged", manifest.release, manifest.generation)
    if not is_newer(state, fetched, pinned):
        return Outcome("older", manifest.release, manifest.generation)
    target = layout.release_dir(manifest.release)
    if not target.is_dir():
        if staging is None:
            raise TransientError(f"release {manifest.release} was removed while swapping; retrying")
        os.rename(staging, target)
    layout.point_current_at(manifest.release)
    layout.write_state(_advanced(state, fetched))
    return outcome


def _advanced(state: State, fetched: Fetched) -> State:
    now = time.time()
    history = list(state.history)
    if history and history[-1].live_until is None:
        history[-1].live_until = now
    history.append(LiveRecord(fetched.manifest.release, fetched.manifest.generation, now))
    return State(
        fetched.source_id, fetched.manifest.release, fetched.manifest.generation, history[-HISTORY_LENGTH:]
    )


def _note_generation(layout: Layout, fetched: Fetched) -> None:
    """The live release was re-published (e.g. rolled back to): remember the newer generation."""
    state = layout.read_state()
    if state.source == fetched.source_id and state.generation >= fetched.manifest.generation:
        return
    with layout.lock:
        state = layout.read_state()
        if layout.live_release() != fetched.manifest.release:
            return
        if state.source == fetched.source_id and state.generation >= fetched.manifest.generation:
            return
        state.source = fetched.source_id
        state.release = fetched.manifest.release
        state.generation = fetched.manifest.generation
        layout.write_state(state)


def stage(
    fetched: Fetched,
    remote: Remote,
    staging: Path,
    settings: PullSettings,
    reusable: dict[str, str],
    progress: Callable[[], None] = lambda: None,
) -> Outcome:
    """Fill `staging` with the release: `reusable` (content id -> local file) is hard-linked,
    the rest fetched, every byte verified."""
    manifest = fetched.manifest
    to_fetch, linked = _link_unchanged(manifest, reusable, staging)
    remaining, used_pack, pack_problem = to_fetch, False, None
    if fetched.has_pack and pack_is_cheaper(manifest, to_fetch, settings):
        remaining, used_pack, pack_problem = _from_pack(remote, manifest, to_fetch, staging)
        progress()
    _download_all(remote, remaining, staging, settings.concurrency, progress)
    _check_complete(to_fetch, staging)
    return Outcome(
        "swapped",
        manifest.release,
        manifest.generation,
        files_fetched=len(to_fetch),
        bytes_fetched=sum(entry.size for entry in to_fetch),
        files_linked=linked,
        used_pack=used_pack,
        pack_problem=pack_problem,
    )


def pack_is_cheaper(manifest: Manifest, to_fetch: list[FileEntry], settings: PullSettings) -> bool:
    """Weigh one GET of the whole pack against single GETs of `to_fetch`, in bytes of transfer
    time: each round of `concurrency` parallel GETs costs `request_cost`, and their bytes
    share the connections. A manifest without `pack_bytes` is judged by its unpacked size."""
    if len(to_fetch) < 2:
        return False
    pack = manifest.pack_bytes if manifest.pack_bytes is not None else manifest.total_bytes
    rounds = math.ceil(len(to_fetch) / settings.concurrency)
    spread = max(sum(entry.size for entry in to_fetch) / settings.concurrency, max(e.size for e in to_fetch))
    return settings.request_cost + pack < rounds * settings.request_cost + spread


def _reusable_files(layout: Layout, live: str | None, limits: Limits) -> dict[str, str]:
    """content id -> a file in the live release that holds exactly that content."""
    if live is None:
        return {}
    previous = layout.load_manifest(live, limits)
    if previous is None:
        return {}
    folder = str(layout.release_dir(live))
    return {entry.content_id: os.path.join(folder, entry.path) for entry in previous.files}


def _link_unchanged(
    manifest: Manifest, reusable: dict[str, str], staging: Path
) -> tuple[list[FileEntry], int]:
    """Hard-link every file whose content is live already; return the others and the count linked.

    Plain strings and one makedirs per folder: this loop runs once per file of the release.
    """
    root = str(staging)
    folders: set[str] = set()
    others: list[FileEntry] = []
    for entry in manifest.files:
        source = reusable.get(entry.content_id)
        if source is None or not _link(source, os.path.join(root, entry.path), entry.size, folders):
            others.append(entry)
    return others, len(manifest.files) - len(others)


def _link(source: str, dest: str, size: int, folders: set[str]) -> bool:
    try:
        info = os.lstat(source)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        folder = os.path.dirname(dest)
        if folder not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.add(folder)
        os.link(source, dest)
        return True
    except OSError:  # the old release was pruned meanwhile, or no hard links here
        return False


def _from_pack(
    remote: Remote, manifest: Manifest, to_fetch: list[FileEntry], staging: Path
) -> tuple[list[FileEntry], bool, str | None]:
    """Fill `staging` from the pack as far as it verifies; the rest is left for single GETs.

    The pack is only a transport: when it is missing, cut short, damaged or hostile, what
    verified stays, the rest comes one object at a time, and the problem is reported.
    """
    try:
        stream = remote.open_pack(manifest.release)
    except TransientError as exc:
        return to_fetch, False, str(exc)
    if stream is None:
        return to_fetch, False, None
    problem, written = None, set()
    try:
        extract_pack(stream, manifest, {entry.path: entry for entry in to_fetch}, staging, written)
    except (BotoCoreError, ConnectionError, TimeoutError) as exc:
        problem = f"pack of release {manifest.release} cut short: {exc}"
    except (S3SyncError, tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        problem = f"pack of release {manifest.release} is damaged: {exc}"
    finally:
        stream.close()
    return [entry for entry in to_fetch if entry.path not in written], True, problem


def _download_all(
    remote: Remote, entries: list[FileEntry], staging: Path, concurrency: int, progress: Callable[[], None]
) -> None:
    if not entries:
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(remote.download, entry, staging / entry.path) for entry in entries]
        for future in futures:
            future.add_done_callback(lambda _f: progress())
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            future.result()  # raises the first failure


def _check_complete(fetched: list[FileEntry], staging: Path) -> None:
    """Every fetched file is in place (linked ones were checked as they were linked)."""
    for entry in fetched:
        try:
            info = os.lstat(staging / entry.path)
        except FileNotFoundError:
            raise VerificationError(f"staged tree is missing {entry.path!r}") from None
        if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
            raise VerificationError(f"staged {entry.path!r} is not the {entry.size}-byte file expected")
