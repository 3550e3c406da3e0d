"""Turn a fetched manifest into the live tree: stage, verify, swap. The sync protocol.

1. Files whose content is already in the live release are hard-linked from it.
2. The rest come from the release's pack (cold start, big diffs) or as single
   objects in parallel; every byte is verified before it counts.
3. Under the ROOT lock: re-check the release is newer than what is live, move the
   complete staging folder to releases/<id>, swap `current` with rename(2).
"""

import gzip
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

from s3sync.errors import TransientError, VerificationError
from s3sync.layout import HISTORY_LENGTH, Layout, LiveRecord, State
from s3sync.manifest import FileEntry, Limits, Manifest
from s3sync.pack import extract_pack
from s3sync.remote import Fetched, Remote


@dataclass(frozen=True)
class PullSettings:
    limits: Limits = field(default_factory=Limits)
    concurrency: int = 16
    pack_min_files: int = 50  # with a live release, use the pack from this many changed files
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
        outcome = _stage(fetched, remote, layout, staging, settings, progress)
        layout.save_manifest(manifest)
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


def _stage(
    fetched: Fetched,
    remote: Remote,
    layout: Layout,
    staging: Path,
    settings: PullSettings,
    progress: Callable[[], None],
) -> Outcome:
    manifest = fetched.manifest
    live = layout.live_release()
    reusable = _reusable_files(layout, live, settings.limits)
    to_fetch: list[FileEntry] = []
    linked = 0
    for entry in manifest.files:
        source = reusable.get(entry.content_id)
        if source is not None and _link(source, staging / entry.path, entry.size):
            linked += 1
        else:
            to_fetch.append(entry)
    fetched_count, fetched_bytes = len(to_fetch), sum(e.size for e in to_fetch)
    used_pack = False
    if fetched.has_pack and len(to_fetch) > 1 and (live is None or len(to_fetch) >= settings.pack_min_files):
        to_fetch, used_pack = _from_pack(remote, manifest, to_fetch, staging)
        progress()
    _download_all(remote, to_fetch, staging, settings.concurrency, progress)
    _check_complete(manifest, staging)
    return Outcome(
        "swapped", manifest.release, manifest.generation, fetched_count, fetched_bytes, linked, used_pack
    )


def _reusable_files(layout: Layout, live: str | None, limits: Limits) -> dict[str, Path]:
    """content id -> a file in the live release that holds exactly that content."""
    if live is None:
        return {}
    previous = layout.load_manifest(live, limits)
    if previous is None:
        return {}
    folder = layout.release_dir(live)
    return {entry.content_id: folder / entry.path for entry in previous.files}


def _link(source: Path, dest: Path, size: int) -> bool:
    try:
        info = os.lstat(source)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, dest)
        return True
    except OSError:  # the old release was pruned meanwhile, or no hard links here
        return False


def _from_pack(
    remote: Remote, manifest: Manifest, to_fetch: list[FileEntry], staging: Path
) -> tuple[list[FileEntry], bool]:
    stream = remote.open_pack(manifest.release)
    if stream is None:
        return to_fetch, False
    wanted = {entry.path: entry for entry in to_fetch}
    try:
        extract_pack(stream, manifest, wanted, staging)
    except (BotoCoreError, ConnectionError, TimeoutError):
        pass  # transport trouble half way: what verified stays, the rest comes one by one
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise VerificationError(f"pack of release {manifest.release} is corrupt: {exc}") from None
    finally:
        stream.close()
    # write_verified leaves a file only once it verified
    return [entry for entry in to_fetch if not (staging / entry.path).is_file()], True


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


def _check_complete(manifest: Manifest, staging: Path) -> None:
    for entry in manifest.files:
        try:
            info = os.lstat(staging / entry.path)
        except FileNotFoundError:
            raise VerificationError(f"staged tree is missing {entry.path!r}") from None
        if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
            raise VerificationError(f"staged {entry.path!r} is not the {entry.size}-byte file expected")
