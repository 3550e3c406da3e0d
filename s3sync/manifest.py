"""The release manifest: what a release contains, its id, and strict parsing.

A manifest names every file of a release with its size and content digest:
`{"format": "s3sync/v1", "release": ID, "generation": N, "lineage": L, "created_at": ISO,
  "files": [{"path": ..., "size": ..., "sha256": ...}], "meta": {...}}`.
Releases built from a plain listing carry `md5` or `etag` instead of `sha256`.
`pack_bytes`, when present, is the size of the release's pack (the puller weighs it
against single downloads).

Generations count the changes of one history of LATEST.json, named by its lineage: the
first publish into an empty prefix starts a new lineage, every later one carries it on.
Generations are comparable only within a lineage (a prefix emptied and published again
starts over at 1). Manifests written before lineages existed have none ("").
"""

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from s3sync.errors import ManifestError
from s3sync.safepath import check_no_collisions, check_relative_path

FORMAT = "s3sync/v1"
DIGEST_KINDS = ("sha256", "md5", "etag")
RELEASE_ID = re.compile(r"^[0-9a-f]{20}$")
LINEAGE = re.compile(r"^[0-9a-f]{16}$")
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
    lineage: str = ""
    pack_bytes: int | None = None

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
            **({"lineage": self.lineage} if self.lineage else {}),
            **({"pack_bytes": self.pack_bytes} if self.pack_bytes is not None else {}),
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


def new_lineage() -> str:
    return secrets.token_hex(8)


def build(files: list[FileEntry], generation: int, meta: dict | None = None, lineage: str = "") -> Manifest:
    ordered = tuple(sorted(files, key=lambda e: e.path))
    check_no_collisions([entry.path for entry in ordered])
    return Manifest(
        release=release_id(ordered),
        generation=generation,
        files=ordered,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        meta=meta or {},
        lineage=lineage,
    )


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
    lineage = document.get("lineage", "")
    if not isinstance(lineage, str) or (lineage and not LINEAGE.match(lineage)):
        raise ManifestError(f"lineage must be 16 lowercase hex characters: {lineage!r}")
    pack_bytes = document.get("pack_bytes")
    if pack_bytes is not None and (type(pack_bytes) is not int or pack_bytes < 0):
        raise ManifestError(f"pack_bytes must be a non-negative integer: {pack_bytes!r}")
    created_at = document.get("created_at", "")
    return Manifest(release, generation, files, str(created_at), meta, lineage, pack_bytes)


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
