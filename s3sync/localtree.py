"""Scan a local folder into manifest entries (what `publish` uploads)."""

import fnmatch
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from s3sync.errors import BadInput
from s3sync.manifest import FileEntry
from s3sync.safepath import check_relative_path
from s3sync.verify import hash_file

ALWAYS_EXCLUDED = ("__pycache__", "*.pyc")


@dataclass(frozen=True)
class LocalFile:
    entry: FileEntry
    source: Path


def is_excluded(relpath: str, patterns: tuple[str, ...]) -> bool:
    """True when the path, or any folder on it, matches a glob (or one of ALWAYS_EXCLUDED)."""
    parts = relpath.split("/")
    for pattern in (*ALWAYS_EXCLUDED, *patterns):
        if fnmatch.fnmatchcase(relpath, pattern):
            return True
        if any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def scan(directory: Path, excludes: tuple[str, ...] = ()) -> list[LocalFile]:
    """Hash every regular file under `directory`; refuse symlinks and special files."""
    if not directory.is_dir():
        raise BadInput(f"not a directory: {directory}")
    found: list[LocalFile] = []
    for top, dirnames, filenames in os.walk(directory):
        rel_top = Path(top).relative_to(directory).as_posix()
        dirnames.sort()
        kept_dirs = []
        for name in dirnames:
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            if is_excluded(rel, excludes):
                continue
            if os.path.islink(os.path.join(top, name)):
                raise BadInput(f"refusing to publish symlink {rel!r} (publish real files only)")
            kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            if is_excluded(rel, excludes):
                continue
            found.append(_local_file(Path(top) / name, rel))
    return found


def _local_file(path: Path, rel: str) -> LocalFile:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        raise BadInput(f"refusing to publish symlink {rel!r} (publish real files only)")
    if not stat.S_ISREG(mode):
        raise BadInput(f"refusing to publish {rel!r}: not a regular file")
    try:
        check_relative_path(rel)
    except BadInput as exc:
        raise BadInput(f"cannot publish {rel!r}: {exc}") from None
    size, sha256 = hash_file(path)
    return LocalFile(FileEntry(rel, size, "sha256", sha256), path)


def read_unchanged(local: LocalFile) -> bytes:
    """The file's bytes, provided they still hash to what the manifest will say."""
    data = local.source.read_bytes()
    if len(data) != local.entry.size or hashlib.sha256(data).hexdigest() != local.entry.digest:
        raise BadInput(f"{local.entry.path!r} changed while publishing; publish again")
    return data
