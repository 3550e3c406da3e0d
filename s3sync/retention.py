"""Which old releases to delete: keep the newest few, any a reader may still be in, and any
the metadata DB says a DAG run or DAG version still uses (s3sync.inuse)."""

import os

from s3sync.layout import Layout, State


def releases_to_keep(
    state: State, on_disk: dict[str, float], live: str | None, keep: int, grace: float, now: float
) -> set[str]:
    """`on_disk` maps release id -> folder mtime. Returns the ids that must stay."""
    last_seen: dict[str, float] = {}
    recent: set[str] = set()
    for record in state.history:
        last_seen[record.release] = max(last_seen.get(record.release, 0.0), record.live_from)
        if record.live_until is None or now - record.live_until < grace:
            recent.add(record.release)
    newest = sorted(last_seen, key=last_seen.__getitem__, reverse=True)[:keep]
    young = {
        release for release, mtime in on_disk.items() if release not in last_seen and now - mtime < grace
    }
    kept = set(newest) | recent | young
    if live:
        kept.add(live)
    return kept


def prune(
    layout: Layout, keep: int, grace: float, now: float, in_use: frozenset[str] = frozenset()
) -> list[str]:
    """Move to the trash the releases that are neither live, nor among the newest `keep`, nor
    recent, nor in use, and anything in releases/ that is not a release folder (the trash is
    swept outside the lock: Layout.sweep_trash). Call with the ROOT lock held.
    """
    on_disk = _on_disk(layout)
    removed = _doomed(layout, on_disk, keep, grace, now, in_use)
    for release in removed:
        layout.discard_release(release)
    for entry in os.scandir(layout.manifests):
        release = entry.name.removesuffix(".json")
        if release not in on_disk and now - entry.stat(follow_symlinks=False).st_mtime >= grace:
            os.unlink(entry.path)  # manifest of a release that never landed
    return removed


def releases_to_remove(
    layout: Layout, keep: int, grace: float, now: float, in_use: frozenset[str] = frozenset()
) -> list[str]:
    """What prune() would delete now."""
    return _doomed(layout, _on_disk(layout), keep, grace, now, in_use)


def _on_disk(layout: Layout) -> dict[str, float]:
    """name -> mtime of everything in releases/ (a symlink's own, never its target's)."""
    return {entry.name: entry.stat(follow_symlinks=False).st_mtime for entry in os.scandir(layout.releases)}


def _doomed(
    layout: Layout, on_disk: dict[str, float], keep: int, grace: float, now: float, in_use: frozenset[str]
) -> list[str]:
    kept = releases_to_keep(layout.read_state(), on_disk, layout.live_release(), keep, grace, now)
    strays = {name for name in on_disk if not layout.has_release(name)}
    return sorted((set(on_disk) - kept - in_use) | strays)
