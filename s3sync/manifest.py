"""The release manifest: what a release contains, its id, and strict parsing.

A manifest names every file of a release with its size and content digest:
`{"format": "s3sync/v1", "release": ID, "generation": N, "lineage": L, "created_at": ISO,
  "files": [{"path": ..., "size": ..., "sha256": ...}], "meta": {...}}`.
Releases built from a plain listing carry `md5` or `etag` instead of `sha256`.
`pack_bytes`, when present, is the size of the release's pack (the puller weighs it
against single downloads).

Parsing is bounded by the limits before anything is built: the document's size, then an
upper bound of its JSON values (json.loads builds every one), then the cheap fields, then
the files, each check linear in the manifest's size.

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
from s3sync.safepath import check_no_collisions, check_relative_path, shown

FORMAT = "s3sync/v1"
DIGEST_KINDS = ("sha256", "md5", "etag")
RELEASE_ID = re.compile(r"^[0-9a-f]{20}$")
LINEAGE = re.compile(r"^[0-9a-f]{16}$")
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "md5": re.compile(r"^[0-9a-f]{32}$")}
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
VALUES_PER_FILE = 8  # a file entry is one object, three keys and three values
VALUES_BESIDE_FILES = 10_000  # the top-level fields and `meta`
MAX_META_DEPTH = 16


@dataclass(frozen=True)
class Limits:
    max_files: int = 100_000
    max_bytes: int = 10 * 1024**3
    max_manifest_bytes: int = 16 * 1024**2  # 100,000 files with 60-byte paths take 13 MB
    max_path_depth: int = 64

    @property
    def max_json_values(self) -> int:
        return VALUES_PER_FILE * self.max_files + VALUES_BESIDE_FILES


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
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def release_id(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """Content-derived id: the same file list always gets the same id."""
    digest = hashlib.sha256()
    for entry in sorted(files, key=lambda e: e.path):
        digest.update(f"{entry.path}\0{entry.size}\0{entry.content_id}\n".encode())
    return digest.hexdigest()[:20]


def new_lineage() -> str:
    return secrets.token_hex(8)


def build(
    files: list[FileEntry],
    generation: int,
    meta: dict | None = None,
    lineage: str = "",
    max_folders: int | None = None,
) -> Manifest:
    ordered = tuple(sorted(files, key=lambda e: e.path))
    check_no_collisions((entry.path for entry in ordered), max_folders)
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
    _check_json_values(raw, limits.max_json_values)
    try:
        document = json.loads(raw)
    except RecursionError:
        raise ManifestError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"malformed JSON ({str(exc)[:200]})") from None
    if not isinstance(document, dict):
        raise ManifestError("manifest is not a JSON object")
    if document.get("format") != FORMAT:
        raise ManifestError(f"unknown manifest format {document.get('format')!r:.80} (want {FORMAT!r})")
    release = document.get("release")
    if not isinstance(release, str) or not RELEASE_ID.match(release):
        raise ManifestError(f"release id must be 20 lowercase hex characters: {release!r:.80}")
    generation = document.get("generation")
    if type(generation) is not int or generation < 0:
        raise ManifestError(f"generation must be a non-negative integer: {generation!r:.80}")
    lineage = document.get("lineage", "")
    if not isinstance(lineage, str) or (lineage and not LINEAGE.match(lineage)):
        raise ManifestError(f"lineage must be 16 lowercase hex characters: {lineage!r:.80}")
    pack_bytes = document.get("pack_bytes")
    if pack_bytes is not None and (type(pack_bytes) is not int or pack_bytes < 0):
        raise ManifestError(f"pack_bytes must be a non-negative integer: {pack_bytes!r:.80}")
    meta = document.get("meta", {})
    if not isinstance(meta, dict) or _depth(meta) > MAX_META_DEPTH:
        raise ManifestError(f"meta must be a JSON object at most {MAX_META_DEPTH} levels deep")
    raw_files = document.get("files")
    if not isinstance(raw_files, list):
        raise ManifestError("files must be a list")
    if len(raw_files) > limits.max_files:
        raise ManifestError(f"{len(raw_files)} files, over the limit of {limits.max_files}")
    files = tuple(
        sorted((_parse_entry(item, limits.max_path_depth) for item in raw_files), key=lambda e: e.path)
    )
    total = sum(entry.size for entry in files)
    if total > limits.max_bytes:
        raise ManifestError(f"{total} bytes in files, over the limit of {limits.max_bytes}")
    if release != release_id(files):
        raise ManifestError(f"release id {release} does not match its file list")
    check_no_collisions((entry.path for entry in files), max_folders=limits.max_files)
    created_at = document.get("created_at", "")
    return Manifest(release, generation, files, str(created_at)[:100], meta, lineage, pack_bytes)


def _check_json_values(raw: bytes, limit: int) -> None:
    """Refuse a document of more JSON values than `limit` before json.loads builds them all:
    a few MB of `[],[],...` would otherwise cost GBs. Every value but the first in its
    container follows a comma or a colon, so separators and openings bound the count;
    counted over the raw bytes first (cheap), and only when that is over the limit, again
    with the strings' contents taken out."""
    if _values_bound(raw) <= limit:
        return
    if _values_bound(_JSON_STRING.sub(b'""', raw)) > limit:
        raise ManifestError(f"more than {limit} JSON values, more than the file limit allows")


def _values_bound(raw: bytes) -> int:
    return sum(raw.count(mark) for mark in (b",", b":", b"[", b"{")) + 1


def _depth(value: object) -> int:
    """How deeply `value` nests lists and objects, without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_META_DEPTH:
            return deepest
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _parse_entry(item: object, max_depth: int) -> FileEntry:
    if not isinstance(item, dict):
        raise ManifestError(f"file entry is not an object: {item!r:.80}")
    path = check_relative_path(item.get("path"), max_depth)
    size = item.get("size")
    if type(size) is not int or size < 0:
        raise ManifestError(f"size of {shown(path)} must be a non-negative integer: {size!r:.80}")
    kinds = [kind for kind in DIGEST_KINDS if kind in item]
    if len(kinds) != 1:
        raise ManifestError(f"{shown(path)} must carry exactly one of {', '.join(DIGEST_KINDS)}")
    kind = kinds[0]
    digest = item[kind]
    pattern = _HEX.get(kind)
    if not isinstance(digest, str) or (pattern and not pattern.match(digest)) or not digest:
        raise ManifestError(f"{kind} of {shown(path)} is not valid: {digest!r:.80}")
    return FileEntry(path, size, kind, digest)
