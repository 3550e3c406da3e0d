"""Turn a fetched manifest into the live tree: stage, verify, swap. The sync protocol.

1. Files whose content is already in the live release are hard-linked from it.
2. The rest come from the release's pack or as single objects in parallel, whichever
   costs less; every byte is verified before it counts.
3. Under the ROOT lock: re-check the release is newer than what is live, move the
   complete staging folder to releases/<id>, swap `current` with rename(2).

`current` moves on its own only forward: to a higher generation of the history of
LATEST.json it follows (its lineage). Another history (a LATEST.json without its lineage,
with another one, a plain listing where LATEST.json was) is followed only when pinned or
adopted (`--adopt-lineage`); going back within a history takes `s3sync rollback`, which
publishes the old release as a new generation.
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

from s3sync.beneath import Beneath, Cursor
from s3sync.errors import S3SyncError, TargetError, TransientError, VerificationError
from s3sync.layout import HISTORY_LENGTH, Layout, LiveRecord, State
from s3sync.manifest import FileEntry, Limits, Manifest
from s3sync.pack import extract_pack
from s3sync.packwriter import FolderWriter
from s3sync.parallel import per_folder, run_per_folder
from s3sync.remote import Fetched, Remote
from s3sync.verify import verify_tree

ANY_LINEAGE = "any"


@dataclass(frozen=True)
class PullSettings:
    limits: Limits = field(default_factory=Limits)
    concurrency: int = 16
    request_cost: int = 1024**2  # one GET's latency, counted as bytes of transfer time
    keep: int = 3
    grace: float = 600.0
    adopt_lineage: str | None = None  # a history of LATEST.json to follow into (ANY_LINEAGE: any)
    fs_concurrency: int = 32  # file-system changes at once (s3sync.parallel)


@dataclass(frozen=True)
class Outcome:
    # "unchanged", "swapped", "older" (behind what is live) or "other-lineage" (another
    # history of LATEST.json, not followed without an operator's say)
    action: str
    release: str
    generation: int
    files_fetched: int = 0
    bytes_fetched: int = 0
    files_linked: int = 0
    used_pack: bool = False
    pack_problem: str | None = None  # why the pack was given up for single GETs
    history: str = ""  # of LATEST.json, for "other-lineage"

    def not_applied(self, live: str | None) -> str | None:
        """Why a fetched release did not go live (one line), or None when it is live."""
        if self.action == "older":
            return (
                f"release {self.release} (generation {self.generation}) is older than release {live}, "
                "which stays live (s3sync rollback publishes an old release as a new generation)"
            )
        if self.action == "other-lineage":
            return (
                f"release {self.release} is generation {self.generation} of another history of LATEST.json "
                f"(lineage {self.history}) and was not followed; release {live} stays live. To follow it: "
                f"--adopt-lineage {self.history} (S3SYNC_ADOPT_LINEAGE), or pin --release {self.release}"
            )
        return None


def history(source_id: str) -> str:
    """The history a source id names: a lineage, "none" (a LATEST.json without one) or "listing"."""
    kind = source_id.rpartition("#")[2]
    return "listing" if kind == "listing" else kind.partition(":")[2] or "none"


def judge(state: State, fetched: Fetched, pinned: bool, adopt: str | None) -> str:
    """ "newer", "older" or "other-lineage" (see the module docstring). A fresh ROOT, or one
    last fed from another prefix (the operator moved --source), follows what it is given."""
    if pinned or not state.source or state.source.rpartition("#")[0] != fetched.source_id.rpartition("#")[0]:
        return "newer"
    if state.source != fetched.source_id:
        return "newer" if adopt in (ANY_LINEAGE, history(fetched.source_id)) else "other-lineage"
    return "newer" if fetched.manifest.generation > state.generation else "older"


def apply(
    fetched: Fetched,
    remote: Remote,
    layout: Layout,
    settings: PullSettings,
    pinned: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> Outcome:
    """Make `fetched` live unless it already is, is older, or is another history. The live
    tree changes only by the final rename: any error before it leaves the last good release live."""
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
        _note_generation(layout, fetched, settings.adopt_lineage)
        return Outcome("unchanged", manifest.release, manifest.generation)
    verdict = judge(layout.read_state(), fetched, pinned, settings.adopt_lineage)
    if verdict != "newer":
        return Outcome(verdict, manifest.release, manifest.generation, history=history(fetched.source_id))
    if kept_and_intact(layout, manifest, progress, settings.fs_concurrency):
        with layout.lock:
            return _swap(
                layout,
                fetched,
                pinned,
                None,
                Outcome("swapped", manifest.release, manifest.generation),
                settings,
            )
    with layout.building(manifest.release), layout.staging_dir() as staging:
        if layout.live_release() == manifest.release:  # another sidecar made it live meanwhile
            return Outcome("unchanged", manifest.release, manifest.generation)
        reusable = _reusable_files(layout, layout.live_release(), settings.limits)
        outcome = stage(fetched, remote, staging, settings, reusable, progress)
        with layout.lock:
            return _swap(layout, fetched, pinned, staging, outcome, settings)


def kept_and_intact(
    layout: Layout, manifest: Manifest, progress: Callable[[], None], workers: int = 1
) -> bool:
    """A release kept under releases/ is made live again only if it still holds exactly its
    files: whoever can write the volume could have planted or changed it."""
    if not layout.has_release(manifest.release):
        return False
    try:
        verify_tree(layout.release_dir(manifest.release), manifest, progress, workers)
    except VerificationError:
        return False
    return True


def repair_current(
    layout: Layout, limits: Limits, progress: Callable[[], None], workers: int = 1
) -> str | None:
    """When `current` names none of the kept releases (it points out of ROOT, at a look-alike,
    at a release gone or changed), point it back at the release state.json says is live if
    that is kept and intact, else remove the link. Returns what was wrong, or None."""
    problem = layout.current_problem()
    if problem is None:
        return None
    with layout.lock:
        problem = layout.current_problem()
        if problem is None:
            return None
        release = layout.read_state().release
        manifest = layout.load_manifest(release, limits) if layout.has_release(release) else None
        if manifest is not None and kept_and_intact(layout, manifest, progress, workers):
            layout.point_current_at(release)
            return f"{problem}; pointed back at release {release}"
        layout.drop_current()
        return f"{problem}; removed"


def _swap(
    layout: Layout,
    fetched: Fetched,
    pinned: bool,
    staging: Beneath | None,
    outcome: Outcome,
    settings: PullSettings,
) -> Outcome:
    """Make the release live. Call with the ROOT lock held."""
    manifest = fetched.manifest
    state = layout.read_state()
    if layout.live_release() == manifest.release:  # another sidecar on this ROOT got there first
        return Outcome("unchanged", manifest.release, manifest.generation)
    verdict = judge(state, fetched, pinned, settings.adopt_lineage)
    if verdict != "newer":
        return Outcome(verdict, manifest.release, manifest.generation, history=history(fetched.source_id))
    if staging is not None:
        if os.path.lexists(layout.release_dir(manifest.release)):
            layout.discard_release(manifest.release)  # unverified, or a copy another sidecar made
        layout.adopt_staging(staging, manifest.release)
    elif not layout.has_release(manifest.release):
        raise TransientError(f"release {manifest.release} was removed while swapping; retrying")
    layout.save_manifest(manifest, fetched.raw)
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


def _note_generation(layout: Layout, fetched: Fetched, adopt: str | None) -> None:
    """The live release was re-published (e.g. rolled back to): remember the newer generation,
    when it is one the sidecar would have followed (never another history's, unadopted)."""
    if judge(layout.read_state(), fetched, False, adopt) != "newer":
        return
    with layout.lock:
        state = layout.read_state()
        if layout.live_release() != fetched.manifest.release:
            return
        if judge(state, fetched, False, adopt) != "newer":
            return
        state.source = fetched.source_id
        state.release = fetched.manifest.release
        state.generation = fetched.manifest.generation
        layout.write_state(state)


def stage(
    fetched: Fetched,
    remote: Remote,
    staging: Beneath,
    settings: PullSettings,
    reusable: dict[str, str],
    progress: Callable[[], None] = lambda: None,
) -> Outcome:
    """Fill `staging` with the release: `reusable` (content id -> local file) is hard-linked,
    the rest fetched, every byte verified."""
    manifest = fetched.manifest
    to_fetch, linked = _link_unchanged(manifest, reusable, staging, settings, progress)
    remaining, used_pack, pack_problem = to_fetch, False, None
    if fetched.has_pack and pack_is_cheaper(manifest, to_fetch, settings):
        remaining, used_pack, pack_problem = _from_pack(
            remote, manifest, to_fetch, staging, settings, progress
        )
    _download_all(remote, remaining, staging, settings.concurrency, progress)
    _check_complete(to_fetch, staging.path, settings.fs_concurrency)
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
    manifest: Manifest, reusable: dict[str, str], staging: Beneath, settings: PullSettings, progress
) -> tuple[list[FileEntry], int]:
    """Hard-link every file whose content is live already, folders side by side; return the
    others (in the manifest's order) and the count linked."""
    linkable = [
        (entry, reusable[entry.content_id]) for entry in manifest.files if entry.content_id in reusable
    ]

    def link_folder(group: list[tuple[FileEntry, str]]) -> list[FileEntry]:
        failed = []
        with staging.cursor() as cursor:
            for entry, source in group:
                if not _link(source, cursor, entry):
                    failed.append(entry)
                progress()
        return failed

    groups = per_folder(linkable, lambda pair: pair[0].path)
    failed = {
        entry.path
        for group in run_per_folder(groups, link_folder, settings.fs_concurrency)
        for entry in group
    }
    others = [entry for entry in manifest.files if entry.content_id not in reusable or entry.path in failed]
    return others, len(manifest.files) - len(others)


def _link(source: str, cursor: Cursor, entry: FileEntry) -> bool:
    """Link, then look at what was linked (the link's own reply has its attributes, so on NFS
    this costs no round trip, where a look at the source first would): anything but a regular
    file of the promised size is taken back and fetched instead."""
    try:
        cursor.link(source, entry.path)
    except OSError:  # the old release was pruned meanwhile, or no hard links here
        return False
    info = cursor.lstat(entry.path)
    if stat.S_ISREG(info.st_mode) and info.st_size == entry.size:
        return True
    cursor.unlink(entry.path)
    return False


def _from_pack(
    remote: Remote,
    manifest: Manifest,
    to_fetch: list[FileEntry],
    staging: Beneath,
    settings: PullSettings,
    progress: Callable[[], None],
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
    problem = None
    writer = FolderWriter(staging, settings.fs_concurrency)
    try:
        try:
            extract_pack(stream, manifest, {entry.path: entry for entry in to_fetch}, writer.write, progress)
        finally:
            writer.close()  # every write done (or failed) before what is left is counted
    except (BotoCoreError, ConnectionError, TimeoutError) as exc:
        problem = f"pack of release {manifest.release} cut short: {exc}"
    except (S3SyncError, tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        problem = f"pack of release {manifest.release} is damaged: {exc}"
    finally:
        stream.close()
    return [entry for entry in to_fetch if entry.path not in writer.written], True, problem


def _download_all(
    remote: Remote, entries: list[FileEntry], staging: Beneath, concurrency: int, progress: Callable[[], None]
) -> None:
    if not entries:
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(remote.download, entry, staging) for entry in entries]
        for future in futures:
            future.add_done_callback(lambda _f: progress())
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            future.result()  # raises the first failure


def _check_complete(fetched: list[FileEntry], staging: Path, workers: int) -> None:
    """Every fetched file is in place (linked ones were checked as they were linked); folders
    side by side, as each look is a lookup on EFS."""

    def check_folder(group: list[FileEntry]) -> None:
        for entry in group:
            try:
                info = os.lstat(staging / entry.path)
            except FileNotFoundError:
                raise VerificationError(f"staged tree is missing {entry.path!r}") from None
            if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
                raise VerificationError(f"staged {entry.path!r} is not the {entry.size}-byte file expected")

    run_per_folder(per_folder(fetched, lambda entry: entry.path), check_folder, workers)
