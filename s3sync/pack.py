"""A release's pack: one deterministic tar.gz, so a cold start costs one GET.

The pack is a transport only. Every member is checked against the manifest
(regular file, known path, same size) and verified like any other download.
"""

import gzip
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from s3sync.errors import VerificationError
from s3sync.localtree import LocalFile, read_unchanged
from s3sync.manifest import FileEntry, Manifest
from s3sync.safepath import check_relative_path
from s3sync.verify import write_verified


def write_pack(files: Iterable[LocalFile], out: BinaryIO) -> None:
    """Same files in, same bytes out: sorted, zero mtimes and owners."""
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for local in sorted(files, key=lambda f: f.entry.path):
            info = tarfile.TarInfo(local.entry.path)
            info.size = local.entry.size
            info.mode = 0o444
            tar.addfile(info, io.BytesIO(read_unchanged(local)))


def extract_pack(
    stream: BinaryIO, manifest: Manifest, wanted: dict[str, FileEntry], staging: Path, written: set[str]
) -> None:
    """Write the wanted members into `staging`, verified, adding each path to `written` as
    it lands: when the pack breaks off half way, `written` still says what verified."""
    known = manifest.by_path()
    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            entry = _checked_member(member, known)
            if entry.path not in wanted or entry.path in written:
                continue
            source = tar.extractfile(member)
            write_verified(source.read, staging / entry.path, entry)
            written.add(entry.path)


def _checked_member(member: tarfile.TarInfo, known: dict[str, FileEntry]) -> FileEntry:
    if not member.isreg():
        raise VerificationError(f"pack member {member.name!r} is not a regular file")
    path = check_relative_path(member.name)
    entry = known.get(path)
    if entry is None:
        raise VerificationError(f"pack member {path!r} is not in the manifest")
    if member.size != entry.size:
        raise VerificationError(f"pack member {path!r} is {member.size} bytes, manifest says {entry.size}")
    return entry
