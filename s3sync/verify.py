"""Write a stream to disk while checking it byte for byte against a manifest entry."""

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from s3sync.beneath import Cursor, open_regular, walk_files
from s3sync.errors import VerificationError
from s3sync.manifest import FileEntry, Manifest
from s3sync.parallel import per_folder, run_per_folder

CHUNK = 256 * 1024


def new_hasher(entry: FileEntry):
    if entry.kind == "sha256":
        return hashlib.sha256()
    if entry.kind == "md5":
        return hashlib.md5(usedforsecurity=False)
    return None  # multipart or encrypted ETag: only the size can be checked


def write_verified(read: Callable[[int], bytes], cursor: Cursor, entry: FileEntry) -> None:
    """Create `entry.path` under the cursor's folder (read-only, must not exist) from `read`;
    delete it unless it verifies."""
    fd = cursor.create(entry.path)
    try:
        with os.fdopen(fd, "wb") as out:
            _copy_checked(read, out, entry)
    except BaseException:
        cursor.unlink(entry.path)
        raise


def _copy_checked(read: Callable[[int], bytes], out, entry: FileEntry) -> None:
    hasher = new_hasher(entry)
    written = 0
    while chunk := read(CHUNK):
        written += len(chunk)
        if written > entry.size:
            raise VerificationError(f"{entry.path}: more than the {entry.size} bytes the manifest says")
        if hasher is not None:
            hasher.update(chunk)
        out.write(chunk)
    if written != entry.size:
        raise VerificationError(f"{entry.path}: truncated, got {written} of {entry.size} bytes")
    if hasher is not None and hasher.hexdigest() != entry.digest:
        raise VerificationError(
            f"{entry.path}: {entry.kind} mismatch, got {hasher.hexdigest()} want {entry.digest}"
        )


def hash_file(path: Path) -> tuple[int, str]:
    """Size and sha256 of a local file."""
    return _digest(path, hashlib.sha256())


def _digest(path: Path, hasher) -> tuple[int, str]:
    size = 0
    with open_regular(path) as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            hasher.update(chunk)
    return size, hasher.hexdigest()


def verify_tree(
    folder: Path, manifest: Manifest, progress: Callable[[], None] = lambda: None, workers: int = 1
) -> None:
    """`folder` holds exactly the manifest's files, byte for byte: no file more, none less,
    no symlink or special file. Raises VerificationError naming a difference. The folder is
    listed first; its files are then checked folders side by side (on EFS opening each is a
    lookup)."""
    expected = manifest.by_path()
    found = list(walk_files(folder))
    for rel, _entry in found:
        if rel not in expected:
            raise VerificationError(f"{rel!r} is not in release {manifest.release}")
    if len(found) != len(expected):
        raise VerificationError(
            f"{len(expected) - len(found)} files of release {manifest.release} are missing"
        )

    def check_folder(group: list[tuple[str, os.DirEntry]]) -> None:
        for rel, entry in group:
            _check_kept_file(rel, entry, expected[rel], manifest.release)
            progress()

    run_per_folder(per_folder(found, lambda item: item[0]), check_folder, workers)


def _check_kept_file(rel: str, entry: os.DirEntry, wanted: FileEntry, release: str) -> None:
    info = entry.stat(follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode) or info.st_size != wanted.size:
        raise VerificationError(f"{rel!r} is not the {wanted.size}-byte file release {release} has")
    hasher = new_hasher(wanted)
    if hasher is not None and _digest(Path(entry.path), hasher)[1] != wanted.digest:
        raise VerificationError(f"{rel!r} differs from release {release}")
