"""Reading a source prefix: LATEST.json (conditional), pinned releases, listings, objects."""

import random
import time
from dataclasses import dataclass
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from s3sync.beneath import Beneath, Cursor
from s3sync.errors import BadInput, ManifestError, NoRelease, TransientError, VerificationError
from s3sync.location import S3Location
from s3sync.manifest import RELEASE_ID, FileEntry, Limits, Manifest, build, parse
from s3sync.safepath import check_relative_path, shown
from s3sync.verify import write_verified

MODES = ("auto", "manifest", "listing")
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class Fetched:
    manifest: Manifest
    source_id: str  # generations are only comparable within one source id
    etag: str | None = None  # of LATEST.json, for the next conditional GET
    has_pack: bool = False
    raw: bytes | None = None  # the manifest as published, kept on disk as it came


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_missing(exc: ClientError) -> bool:
    return error_code(exc) in _MISSING


def transient(action: str, exc: Exception) -> TransientError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        detail = f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    else:
        detail = str(exc)
    return TransientError(f"{action}: {detail}")


class Remote:
    def __init__(
        self, client, location: S3Location, limits: Limits, mode: str = "auto", download_attempts: int = 5
    ):
        if mode not in MODES:
            raise BadInput(f"unknown mode {mode!r} (want one of {', '.join(MODES)})")
        self.client = client
        self.location = location
        self.limits = limits
        self.mode = mode
        self.download_attempts = download_attempts

    # -- what is published -------------------------------------------------

    def latest(self, etag: str | None = None) -> Fetched | None:
        """The release LATEST.json names; None when its ETag still equals `etag`."""
        if self.mode == "listing":
            return self.listing()
        key = self.location.latest_key
        try:
            got = get_manifest(
                self.client, self.location, key, self.limits, {"IfNoneMatch": etag} if etag else {}
            )
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 304:
                return None
            if is_missing(exc):
                if self.mode == "auto":
                    return self.listing()
                raise NoRelease(
                    f"no release at {self.location}: {self.location.url(key)} does not exist"
                ) from None
            raise transient(f"GET {self.location.url(key)}", exc) from None
        manifest, raw, response_etag = got
        return Fetched(manifest, self.manifest_source_id(manifest), response_etag, has_pack=True, raw=raw)

    def release(self, release: str) -> Fetched:
        """One immutable release by id (pinning and rollback)."""
        if not RELEASE_ID.match(release):
            raise BadInput(f"not a release id (20 lowercase hex characters): {release!r}")
        key = self.location.release_key(release)
        try:
            manifest, raw, _ = get_manifest(self.client, self.location, key, self.limits)
        except ClientError as exc:
            if is_missing(exc):
                raise BadInput(f"no release {release} at {self.location}") from None
            raise transient(f"GET {self.location.url(key)}", exc) from None
        if manifest.release != release:
            raise ManifestError(f"{self.location.url(key)}: names release {manifest.release}, not {release}")
        return Fetched(manifest, self.manifest_source_id(manifest), has_pack=True, raw=raw)

    def listing(self) -> Fetched:
        """A manifest made from a plain prefix (written by `aws s3 sync` or similar)."""
        started_ms = int(time.time() * 1000)  # a later listing never sees an older state
        files = self._list_entries()
        if not files:
            raise NoRelease(f"no release at {self.location}: no LATEST.json and no objects")
        try:
            manifest = build(
                files,
                generation=started_ms,
                meta={"listing": str(self.location)},
                max_folders=self.limits.max_files,
            )
        except ManifestError as exc:
            raise ManifestError(f"listing of {self.location}: {exc}") from None
        return Fetched(manifest, f"{self.location}#listing")

    def manifest_source_id(self, manifest: Manifest) -> str:
        """Generations compare within one prefix and one lineage of its LATEST.json."""
        lineage = f":{manifest.lineage}" if manifest.lineage else ""
        return f"{self.location}#manifest{lineage}"

    def _list_entries(self) -> list[FileEntry]:
        prefix = self.location.key("") if self.location.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        files: list[FileEntry] = []
        total = 0
        try:
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue  # folder marker
                    if self.mode == "auto" and item["Key"].startswith(self.location.objects_prefix):
                        raise NoRelease(
                            f"{self.location} holds s3sync objects but no LATEST.json yet "
                            "(a first publish in progress?)"
                        )
                    entry = _listed_entry(item, prefix, self.location, self.limits.max_path_depth)
                    files.append(entry)
                    total += entry.size
                    if len(files) > self.limits.max_files:
                        raise ManifestError(
                            f"listing of {self.location}: over the limit of {self.limits.max_files} files"
                        )
                    if total > self.limits.max_bytes:
                        raise ManifestError(
                            f"listing of {self.location}: over the limit of {self.limits.max_bytes} bytes"
                        )
        except ClientError as exc:
            raise transient(f"LIST {self.location}", exc) from None
        except BotoCoreError as exc:
            raise transient(f"LIST {self.location}", exc) from None
        return files

    # -- bytes ---------------------------------------------------------------

    def object_key(self, entry: FileEntry) -> str:
        if entry.kind == "sha256":
            return self.location.object_key(entry.digest)
        return self.location.key(entry.path)

    def download(self, entry: FileEntry, folder: Beneath) -> None:
        """GET one object to `entry.path` under `folder`, verified; retry transport errors and bad
        bytes with backoff."""
        with folder.cursor() as cursor:
            self._download(entry, cursor)

    def _download(self, entry: FileEntry, cursor: Cursor) -> None:
        key = self.object_key(entry)
        url = self.location.url(key)
        for attempt in range(1, self.download_attempts + 1):
            try:
                response = self.client.get_object(Bucket=self.location.bucket, Key=key)
                write_verified(response["Body"].read, cursor, entry)
                return
            except ClientError as exc:
                if is_missing(exc):
                    raise BadInput(f"object missing for {shown(entry.path)}: {url}") from None
                error = transient(f"GET {url}", exc)
            except VerificationError as exc:
                error = exc  # damaged in transit, or wrong in the bucket: another GET tells which
            except (BotoCoreError, OSError) as exc:
                if isinstance(exc, OSError) and not _is_network_error(exc):
                    raise
                error = transient(f"GET {url}", exc)
            if attempt < self.download_attempts:
                backoff(attempt)
        raise error

    def open_pack(self, release: str) -> BinaryIO | None:
        """The pack's body as a stream, or None when this release has no pack."""
        key = self.location.pack_key(release)
        try:
            return self.client.get_object(Bucket=self.location.bucket, Key=key)["Body"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise transient(f"GET {self.location.url(key)}", exc) from None
        except BotoCoreError as exc:
            raise transient(f"GET {self.location.url(key)}", exc) from None


def get_manifest(
    client, location: S3Location, key: str, limits: Limits, conditions: dict | None = None
) -> tuple[Manifest, bytes, str | None]:
    """GET and parse a manifest object: (manifest, its bytes, its ETag). Raises ClientError
    for the caller to judge; transport errors become TransientError.

    ChecksumMode makes botocore check the body against the SHA-256 publish stored with it:
    a manifest damaged in transit (a flipped digit of `generation`) is never believed.
    """
    url = location.url(key)
    try:
        response = client.get_object(
            Bucket=location.bucket, Key=key, ChecksumMode="ENABLED", **(conditions or {})
        )
        body, limit = response["Body"], limits.max_manifest_bytes
        claimed = response.get("ContentLength", 0)
        raw = b"" if claimed > limit else body.read(limit + 1)  # never past the limit, whatever is claimed
        if claimed > limit or len(raw) > limit:
            body.close()
            raise ManifestError(f"{url}: manifest is over the {limit} limit", etag=response.get("ETag"))
        body.read()  # reaching the end makes botocore check the stored SHA-256
    except BotoCoreError as exc:
        raise transient(f"GET {url}", exc) from None
    try:
        return parse(raw, limits, url), raw, response.get("ETag")
    except ManifestError as exc:
        raise ManifestError(str(exc), etag=response.get("ETag")) from None


def _listed_entry(item: dict, prefix: str, location: S3Location, max_depth: int) -> FileEntry:
    rel = item["Key"][len(prefix) :]
    try:
        path = check_relative_path(rel, max_depth)
    except ManifestError as exc:
        raise ManifestError(f"listing of {location}: {exc}") from None
    etag = item.get("ETag", "").strip('"')
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag):
        return FileEntry(path, item["Size"], "md5", etag)
    return FileEntry(path, item["Size"], "etag", etag or "unknown")


def _is_network_error(exc: OSError) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


def backoff(attempt: int, base: float = 0.2, cap: float = 5.0) -> None:
    """Sleep with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))
