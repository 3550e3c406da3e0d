"""The release manifest: what a release contains, its id, and strict parsing.

A manifest names every file of a release with its size and content digest:
`{"format": "s3sync/v1", "release": ID, "generation": N, "created_at": ISO,
  "files": [{"path": ..., "size": ..., "sha256": ...}], "meta": {...}}`.
Releases built from a plain listing carry `md5` or `etag` instead of `sha256`.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from s3sync.errors import ManifestError
from s3sync.safepath import check_no_collisions, check_relative_path

FORMAT = "s3sync/v1"
DIGEST_KINDS = ("sha256", "md5", "etag")
RELEASE_ID = re.compile(r"^[0-9a-f]{20}$")
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "md5": re.compile(r"^[0-9a-f]{32}$")}


@dataclass(frozen=True)
class Limits:
    max_files: int = 100_000
    max_bytes: int = 10 * 1024**3
    max_manifest_bytes: int = 64 * 1024**2


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    kind: str  # one of DIGEST_KINDS
    digest: str

    @property
    def content_id(self) -> str:
        """Identity of the bytes: equal ids mean equal content."""
        return f"{self.kind}:{self.digest}"

    def to_json(self) -> dict:
        return {"path": self.path, "size": self.size, self.kind: self.digest}


@dataclass(frozen=True)
class Manifest:
    release: str
    generation: int
    files: tuple[FileEntry, ...]
    created_at: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def by_path(self) -> dict[str, FileEntry]:
        return {entry.path: entry for entry in self.files}

    def to_json_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "release": self.release,
            "generation": self.generation,
            "created_at": self.created_at,
            "files": [entry.to_json() for entry in self.files],
            "meta": self.meta,
        }
        return json.dumps(document, indent=1, sort_keys=True).encode()


def release_id(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """Content-derived id: the same file list always gets the same id."""
    digest = hashlib.sha256()
    for entry in sorted(files, key=lambda e: e.path):
        digest.update(f"{entry.path}\0{entry.size}\0{entry.content_id}\n".encode())
    return digest.hexdigest()[:20]


def build(files: list[FileEntry], generation: int, meta: dict | None = None) -> Manifest:
    ordered = tuple(sorted(files, key=lambda e: e.path))
    check_no_collisions([entry.path for entry in ordered])
    return Manifest(
        release=release_id(ordered),
        generation=generation,
        files=ordered,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        meta=meta or {},
    )


def with_generation(manifest: Manifest, generation: int) -> Manifest:
    return Manifest(manifest.release, generation, manifest.files, manifest.created_at, manifest.meta)


def parse(raw: bytes, limits: Limits, where: str) -> Manifest:
    """Parse and fully validate manifest bytes; raise ManifestError naming `where`."""
    try:
        return _parse(raw, limits)
    except ManifestError as exc:
        raise ManifestError(f"{where}: {exc}") from None


def _parse(raw: bytes, limits: Limits) -> Manifest:
    if len(raw) > limits.max_manifest_bytes:
        raise ManifestError(f"manifest is {len(raw)} bytes, over the {limits.max_manifest_bytes} limit")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"malformed JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ManifestError("manifest is not a JSON object")
    if document.get("format") != FORMAT:
        raise ManifestError(f"unknown manifest format {document.get('format')!r} (want {FORMAT!r})")
    generation = document.get("generation")
    if type(generation) is not int or generation < 0:
        raise ManifestError(f"generation must be a non-negative integer: {generation!r}")
    raw_files = document.get("files")
    if not isinstance(raw_files, list):
        raise ManifestError("files must be a list")
    if len(raw_files) > limits.max_files:
        raise ManifestError(f"{len(raw_files)} files, over the limit of {limits.max_files}")
    files = tuple(sorted((_parse_entry(item) for item in raw_files), key=lambda e: e.path))
    total = sum(entry.size for entry in files)
    if total > limits.max_bytes:
        raise ManifestError(f"{total} bytes in files, over the limit of {limits.max_bytes}")
    check_no_collisions([entry.path for entry in files])
    release = document.get("release")
    if not isinstance(release, str) or not RELEASE_ID.match(release):
        raise ManifestError(f"release id must be 20 lowercase hex characters: {release!r}")
    if release != release_id(files):
        raise ManifestError(f"release id {release} does not match its file list")
    meta = document.get("meta", {})
    if not isinstance(meta, dict):
        raise ManifestError("meta must be a JSON object")
    created_at = document.get("created_at", "")
    return Manifest(release, generation, files, str(created_at), meta)


def _parse_entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise ManifestError(f"file entry is not an object: {item!r:.80}")
    path = check_relative_path(item.get("path"))
    size = item.get("size")
    if type(size) is not int or size < 0:
        raise ManifestError(f"size of {path!r} must be a non-negative integer: {size!r}")
    kinds = [kind for kind in DIGEST_KINDS if kind in item]
    if len(kinds) != 1:
        raise ManifestError(f"{path!r} must carry exactly one of {', '.join(DIGEST_KINDS)}")
    kind = kinds[0]
    digest = item[kind]
    pattern = _HEX.get(kind)
    if not isinstance(digest, str) or (pattern and not pattern.match(digest)) or not digest:
        raise ManifestError(f"{kind} of {path!r} is not valid: {digest!r:.80}")
    return FileEntry(path, size, kind, digest)
