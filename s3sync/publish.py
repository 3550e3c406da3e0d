"""Publishing: a local folder becomes an immutable release, LATEST.json moves last.

Order matters and is the whole protocol: objects, pack, release manifest, and only
then the pointer, written conditionally on the ETag it replaces. Manifests are stored
with their SHA-256 (ChecksumAlgorithm), so a reader can tell one damaged in transit.
"""

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from botocore.exceptions import ClientError

from s3sync.errors import BadInput, ManifestError, PublishConflict
from s3sync.localtree import LocalFile, read_unchanged, scan
from s3sync.location import S3Location
from s3sync.manifest import Limits, Manifest, build, new_lineage
from s3sync.pack import write_pack
from s3sync.remote import error_code, get_manifest, is_missing, transient

HEAD_LIMIT = 200  # above this many unknown objects, one LIST is cheaper than HEADs
MAX_SINGLE_PUT = 5 * 1024**3
# Generations skipped when LATEST.json is unreadable: rollbacks raise its generation without
# writing a release manifest, so the newest manifest may lag behind what sidecars have seen.
RECOVERY_JUMP = 1_000


@dataclass(frozen=True)
class Pointer:
    manifest: Manifest | None
    etag: str | None
    damaged: str | None = None  # why LATEST.json could not be read, when it could not

    def successor(self) -> tuple[int, str]:
        """Generation and lineage of the LATEST.json that replaces this one; a new history
        when there is none."""
        if self.manifest is None:
            return 1, new_lineage()
        jump = RECOVERY_JUMP if self.damaged else 0
        return self.manifest.generation + 1 + jump, self.manifest.lineage


@dataclass
class Diff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class PublishResult:
    release: str
    generation: int
    published: bool  # False when LATEST already named this tree, or on a dry run
    diff: Diff
    uploaded: int = 0
    uploaded_bytes: int = 0
    damaged_latest: str | None = None  # why the LATEST.json replaced could not be read


class Publisher:
    def __init__(self, client, location: S3Location, limits: Limits | None = None, concurrency: int = 16):
        self.client = client
        self.location = location
        self.limits = limits or Limits()
        self.concurrency = concurrency

    # -- reading what is there ------------------------------------------------

    def pointer(self) -> Pointer:
        """What LATEST.json says. When it is unreadable (damaged, hostile, written by hand), or
        its release manifest does not vouch for its lineage (a LATEST.json rewritten with another
        history), the history carries on from the newest readable release manifest, and that
        LATEST.json is replaced only if it is still the one read."""
        try:
            found = self._read_manifest(self.location.latest_key)
        except ManifestError as exc:
            return self._recovered(exc.etag, str(exc))
        if found is None:
            return Pointer(None, None)
        manifest, etag = found
        try:
            vouching = self._stored_release(manifest.release)
        except ManifestError:
            vouching = None
        if vouching is None or vouching.lineage != manifest.lineage:
            return self._recovered(
                etag,
                f"it names release {manifest.release} in lineage {manifest.lineage or 'none'}, "
                f"which that release's manifest does not",
            )
        return Pointer(manifest, etag)

    def _recovered(self, etag: str | None, why: str) -> Pointer:
        readable = self.list_releases(skip_unreadable=True)
        return Pointer(readable[-1] if readable else None, etag, damaged=why)

    def release(self, release: str) -> Manifest:
        manifest = self._stored_release(release)
        if manifest is None:
            raise BadInput(f"no release {release} at {self.location}")
        return manifest

    def _stored_release(self, release: str) -> Manifest | None:
        found = self._read_manifest(self.location.release_key(release))
        return found[0] if found else None

    def _read_manifest(self, key: str) -> tuple[Manifest, str] | None:
        """A manifest object and its ETag, checked against its stored SHA-256; None if missing."""
        try:
            manifest, _, etag = get_manifest(self.client, self.location, key, self.limits)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise transient(f"GET {self.location.url(key)}", exc) from None
        return manifest, etag

    def list_releases(self, skip_unreadable: bool = False) -> list[Manifest]:
        """Every release manifest, in the order they were first published."""
        paginator = self.client.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.releases_prefix):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if not name.endswith(".json"):
                    continue
                try:
                    found.append(self.release(name.removesuffix(".json")))
                except BadInput:
                    if not skip_unreadable:
                        raise
        return sorted(found, key=lambda manifest: manifest.generation)

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.location.bucket, Key=key)
            return True
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise transient(f"HEAD {self.location.url(key)}", exc) from None

    def _missing_objects(self, wanted: set[str], known: set[str]) -> set[str]:
        """The sha256s among `wanted` that the bucket does not hold yet."""
        unknown = wanted - known
        if len(unknown) <= HEAD_LIMIT:
            with ThreadPoolExecutor(self.concurrency) as pool:
                present = list(pool.map(lambda h: self._exists(self.location.object_key(h)), sorted(unknown)))
            return {h for h, there in zip(sorted(unknown), present, strict=True) if not there}
        stored = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.objects_prefix):
            stored.update(item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", []))
        return unknown - stored

    # -- writing ----------------------------------------------------------------

    def publish(
        self,
        directory: Path,
        excludes: tuple[str, ...] = (),
        dry_run: bool = False,
        allow_empty: bool = False,
        meta: dict | None = None,
    ) -> PublishResult:
        files = scan(directory, excludes)
        if not files and not allow_empty:
            raise BadInput(f"{directory} has no files to publish (--allow-empty publishes an empty tree)")
        pointer = self.pointer()
        generation, lineage = pointer.successor()
        manifest = build([f.entry for f in files], generation, meta, lineage)
        self._check_limits(manifest)
        diff = _diff(pointer.manifest, manifest)
        if pointer.manifest and not pointer.damaged and pointer.manifest.release == manifest.release:
            return PublishResult(manifest.release, pointer.manifest.generation, False, diff)
        previous = pointer.manifest.files if pointer.manifest else ()
        known = {e.digest for e in previous if e.kind == "sha256"}
        missing = self._missing_objects({f.entry.digest for f in files}, known)
        uploads = _one_file_per_digest(files, missing)
        result = PublishResult(
            manifest.release,
            generation,
            False,
            diff,
            len(uploads),
            sum(f.entry.size for f in uploads),
            pointer.damaged,
        )
        if dry_run:
            return result
        self._upload_objects(uploads)
        stored = self._stored_release(manifest.release)
        if stored is None:
            # the pack before the manifest that vouches for it
            manifest = replace(manifest, pack_bytes=self._upload_pack(manifest.release, files))
            self._put_if_absent(self.location.release_key(manifest.release), manifest.to_json_bytes(), True)
        else:
            manifest = replace(manifest, pack_bytes=stored.pack_bytes)
        self._move_pointer(manifest, pointer.etag)
        result.published = True
        return result

    def rollback(self, release: str) -> Manifest:
        """Point LATEST at an existing release again, as a new generation."""
        target = self.release(release)
        pointer = self.pointer()
        if pointer.manifest and not pointer.damaged and pointer.manifest.release == release:
            raise BadInput(f"release {release} is already LATEST (generation {pointer.manifest.generation})")
        generation, lineage = pointer.successor()
        manifest = replace(target, generation=generation, lineage=lineage)
        self._move_pointer(manifest, pointer.etag)
        return manifest

    def _check_limits(self, manifest: Manifest) -> None:
        if len(manifest.files) > self.limits.max_files:
            raise BadInput(f"{len(manifest.files)} files, over the limit of {self.limits.max_files}")
        if manifest.total_bytes > self.limits.max_bytes:
            raise BadInput(f"{manifest.total_bytes} bytes, over the limit of {self.limits.max_bytes}")
        too_deep = [e.path for e in manifest.files if e.path.count("/") >= self.limits.max_path_depth]
        if too_deep:
            raise BadInput(f"{too_deep[0]!r} is deeper than the limit of {self.limits.max_path_depth} levels")
        too_big = [e.path for e in manifest.files if e.size > MAX_SINGLE_PUT]
        if too_big:
            raise BadInput(f"{too_big[0]!r} is over 5 GiB; DAG folders should not carry such files")

    def _upload_objects(self, uploads: list[LocalFile]) -> None:
        def put(local: LocalFile) -> None:
            self._put_if_absent(self.location.object_key(local.entry.digest), read_unchanged(local))

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(put, uploads))

    def _upload_pack(self, release: str, files: list[LocalFile]) -> int:
        """Upload the release's pack; return its size in bytes."""
        key = self.location.pack_key(release)
        with tempfile.TemporaryFile() as spool:
            write_pack(files, spool)
            size = spool.tell()
            spool.seek(0)
            self.client.upload_fileobj(spool, self.location.bucket, key)
        return size

    def _put_if_absent(self, key: str, body, checksum: bool = False) -> None:
        """Immutable objects: a second writer of the same key changes nothing."""
        extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
        try:
            self.client.put_object(Bucket=self.location.bucket, Key=key, Body=body, IfNoneMatch="*", **extra)
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return
            raise transient(f"PUT {self.location.url(key)}", exc) from None

    def _move_pointer(self, manifest: Manifest, previous_etag: str | None) -> None:
        condition = {"IfMatch": previous_etag} if previous_etag else {"IfNoneMatch": "*"}
        key = self.location.latest_key
        try:
            self.client.put_object(
                Bucket=self.location.bucket,
                Key=key,
                Body=manifest.to_json_bytes(),
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
                **condition,
            )
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PublishConflict(
                    f"{self.location.url(key)} changed while publishing (another publisher?); "
                    f"release {manifest.release} is uploaded but not live: run publish again"
                ) from None
            raise transient(f"PUT {self.location.url(key)}", exc) from None


def _diff(old: Manifest | None, new: Manifest) -> Diff:
    before = old.by_path() if old else {}
    after = new.by_path()
    return Diff(
        added=sorted(p for p in after if p not in before),
        changed=sorted(p for p in after if p in before and before[p].content_id != after[p].content_id),
        removed=sorted(p for p in before if p not in after),
    )


def _one_file_per_digest(files: list[LocalFile], missing: set[str]) -> list[LocalFile]:
    chosen: dict[str, LocalFile] = {}
    for local in files:
        if local.entry.digest in missing:
            chosen.setdefault(local.entry.digest, local)
    return list(chosen.values())
