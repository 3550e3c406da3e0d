"""Write a stream to disk while checking it byte for byte against a manifest entry."""

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from s3sync.errors import VerificationError
from s3sync.manifest import FileEntry

CHUNK = 256 * 1024
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def new_hasher(entry: FileEntry):
    if entry.kind == "sha256":
        return hashlib.sha256()
    if entry.kind == "md5":
        return hashlib.md5(usedforsecurity=False)
    return None  # multipart or encrypted ETag: only the size can be checked


def write_verified(read: Callable[[int], bytes], dest: Path, entry: FileEntry) -> None:
    """Create `dest` (read-only, must not exist) from `read`; delete it unless it verifies."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, _CREATE, 0o444)
    try:
        with os.fdopen(fd, "wb") as out:
            _copy_checked(read, out, entry)
    except BaseException:
        dest.unlink(missing_ok=True)
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
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()
