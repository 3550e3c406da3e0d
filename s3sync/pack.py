"""A release's pack: one deterministic tar.gz, so a cold start costs one GET.

The pack is a transport only. Every member is checked against the manifest (regular file,
known path, same size, in the manifest's order, each path once) and verified like any other
download. What a pack may make the reader do is bounded by its manifest: at most one member
per file, and no more bytes than the files and their headers take.
"""

import gzip
import io
import tarfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from s3sync.errors import VerificationError
from s3sync.localtree import LocalFile, read_unchanged
from s3sync.manifest import FileEntry, Manifest
from s3sync.safepath import check_relative_path, shown

HEADER_ALLOWANCE = 64 * 1024  # a member's headers (PAX for long names) and tarfile's read-ahead


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


class _Allowance(io.RawIOBase):
    """The unpacked tar stream, refusing to read further than the members seen so far
    account for: a header of a gigabyte is refused after HEADER_ALLOWANCE bytes."""

    def __init__(self, source: BinaryIO):
        self.source = source
        self.left = HEADER_ALLOWANCE

    def grant(self, size: int) -> None:
        """A member of `size` bytes was read: its data and the next headers may follow. What
        earlier members left unused is not carried over, so it cannot fund one huge header."""
        self.left = -(-size // 512) * 512 + HEADER_ALLOWANCE

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.left:
            size = self.left + 1
        data = self.source.read(size)
        self.left -= len(data)
        if self.left < 0:
            raise VerificationError("the pack holds more than its manifest accounts for")
        return data


def extract_pack(
    stream: BinaryIO,
    manifest: Manifest,
    wanted: dict[str, FileEntry],
    write: Callable[[FileEntry, Callable[[int], bytes]], None],
    progress: Callable[[], None] = lambda: None,
) -> None:
    """Hand each wanted member to `write(entry, read)`, which writes and verifies it. Every
    member is checked first: a regular file the manifest names, of its size, in its order."""
    known = manifest.by_path()
    unpacked = _Allowance(gzip.GzipFile(fileobj=stream, mode="rb"))
    previous = ""
    with tarfile.open(fileobj=unpacked, mode="r|") as tar:
        while (member := tar.next()) is not None:
            tar.members.clear()  # a stream is read once: keeping every header would grow without bound
            entry = _checked_member(member, known)
            if entry.path <= previous:
                raise VerificationError(f"pack member {shown(entry.path)} is repeated or out of order")
            previous = entry.path
            unpacked.grant(member.size)
            progress()
            if entry.path in wanted:
                write(entry, tar.extractfile(member).read)


def _checked_member(member: tarfile.TarInfo, known: dict[str, FileEntry]) -> FileEntry:
    if not member.isreg():
        raise VerificationError(f"pack member {shown(member.name)} is not a regular file")
    path = check_relative_path(member.name)
    entry = known.get(path)
    if entry is None:
        raise VerificationError(f"pack member {shown(path)} is not in the manifest")
    if member.size != entry.size:
        raise VerificationError(
            f"pack member {shown(path)} is {member.size} bytes, manifest says {entry.size}"
        )
    return entry
