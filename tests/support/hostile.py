"""What a writer with access to the DAG bucket could put there: hostile releases, built by hand.

Each builder writes what it needs into the bucket (objects, a pack, a release manifest) and
returns the bytes to put at LATEST.json. The sidecar must refuse or apply each one in bounded
time and memory, stay up, and keep the last good release live.
"""

import functools
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

from s3sync.manifest import Limits
from tests.support.manifests import manifest_bytes

GOOD = {"dag.py": "from airflow import DAG\n", "lib/util.py": "X = 1\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_for(path: str, data: bytes) -> dict:
    return {"path": path, "size": len(data), "sha256": sha(data)}


class Bucket:
    """Raw writes into the `dags/` prefix of a bucket, as a hostile publisher would make them."""

    def __init__(self, s3, bucket: str, prefix: str = "dags"):
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.lineage, self.generation = "", 0  # of the last readable LATEST.json seen

    def put_object(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha(data)
        key = f"{self.prefix}/objects/sha256/{digest[:2]}/{digest}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return digest

    def put_latest(self, raw: bytes) -> str:
        """Write LATEST.json; its ETag."""
        return self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/LATEST.json", Body=raw)["ETag"]

    def get_latest(self) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}/LATEST.json")["Body"].read()

    def manifest(self, entries: list[dict], **overrides) -> bytes:
        """A manifest of `entries` that continues the history of the LATEST.json there (its
        lineage, a higher generation), as a writer who can read the bucket would make it."""
        try:
            latest = json.loads(self.get_latest())
            self.lineage, self.generation = latest["lineage"], max(self.generation, latest["generation"])
        except (ValueError, KeyError, TypeError, RecursionError):
            pass  # a hostile LATEST.json is there now: carry on the history seen before it
        self.generation += 1
        return manifest_bytes(
            entries, **({"lineage": self.lineage, "generation": self.generation} | overrides)
        )

    def put_pack_bytes(self, release: str, packed: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/releases/{release}.tar.gz", Body=packed)

    def put_pack(self, release: str, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
            for info, data in members:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self.put_pack_bytes(release, buffer.getvalue())


def many_files(count: int, folder: str = "p") -> dict[str, bytes]:
    return {f"{folder}/f{i:05d}.py": f"v = {i}\n".encode() for i in range(count)}


def put_release(bucket: Bucket, files: dict[str, bytes], **overrides) -> tuple[bytes, str]:
    """Objects for `files` and a manifest naming them: (manifest bytes, release id)."""
    for data in files.values():
        bucket.put_object(data)
    raw = bucket.manifest([entry_for(path, data) for path, data in sorted(files.items())], **overrides)
    return raw, json.loads(raw)["release"]


# -- unbounded work from a small input -------------------------------------------------------


def _member_block(path: str, data: bytes) -> bytes:
    """One tar member (header and padded data) as raw bytes."""
    buffer = io.BytesIO()
    info = tarfile.TarInfo(path)
    info.size = len(data)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()[: 512 + -(-len(data) // 512) * 512]


def pack_repeating_a_known_path(bucket: Bucket, repeats: int = 200_000) -> bytes:
    """A legitimate 60-file release whose pack repeats one known member `repeats` times
    (a few hundred KB compressed, about `repeats` KB of tar)."""
    return _release_with_a_hostile_pack(
        bucket, "repeats", lambda path, data: _repeating_pack(path, data, repeats)
    )


@functools.cache
def _repeating_pack(path: str, data: bytes, repeats: int) -> bytes:
    return gzip.compress(_member_block(path, data) * repeats + b"\0" * 1024, compresslevel=9)


def pack_with_a_huge_pax_header(bucket: Bucket, header_bytes: int = 256 * 1024**2) -> bytes:
    """A legitimate release whose pack starts with a PAX extended header of `header_bytes`
    (zeros, so it compresses to almost nothing): tarfile reads a PAX header whole."""
    return _release_with_a_hostile_pack(bucket, "pax", lambda path, data: _pax_pack(path, data, header_bytes))


def _release_with_a_hostile_pack(bucket: Bucket, folder: str, pack) -> bytes:
    """60 good files under `folder`, and a pack made by `pack(first path, its bytes)`; the
    manifest says the pack is tiny, so the sidecar takes it."""
    files = many_files(60, folder)
    raw, release = put_release(bucket, files, pack_bytes=1)
    bucket.put_pack_bytes(release, pack(*next(iter(sorted(files.items())))))
    return raw


@functools.cache
def _pax_pack(path: str, data: bytes, header_bytes: int) -> bytes:
    body = b" comment=" + b"0" * header_bytes + b"\n"
    size = len(body) + len(str(len(body)))
    size += len(str(size)) - len(str(len(body)))  # the length counts its own digits
    record = str(size).encode() + body
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(record)
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    padding = b"\0" * (-len(record) % 512)
    tar = header + record + padding + _member_block(path, data) + b"\0" * 1024
    return gzip.compress(tar, compresslevel=1)


def manifest_with_deep_paths(count: int = 2_000, depth: int = 2_000) -> bytes:
    """`count` paths, each `depth` folders deep, within every size limit (a path stays
    under 4096 bytes). Nothing needs to be in the bucket: the manifest alone is the attack."""
    data = b"x = 1\n"
    folders = "/".join(["a"] * depth)
    return manifest_bytes([entry_for(f"{folders}/f{i}.py", data) for i in range(count)])


def manifest_of_many_tiny_values(count: int = 3_000_000) -> bytes:
    """A few MB of `[]`: within the manifest size limit, millions of JSON values."""
    head = b'{"format": "s3sync/v1", "release": "' + b"0" * 20 + b'", "generation": 1, "files": ['
    return head + b",".join([b"[]"] * count) + b"]}"


def manifest_at_every_limit(bucket: Bucket) -> bytes:
    """A valid one-file manifest just under the manifest size limit whose meta holds as many
    distinct short strings as the JSON value budget allows: the most a manifest can cost to
    parse and keep."""
    data = b"fat = True\n"
    bucket.put_object(data)
    limits = Limits()
    count = limits.max_json_values - 100
    width = (limits.max_manifest_bytes - 4096) // count - 4  # each string: quotes, a comma, a space
    strings = [f"{i:0{width}d}" for i in range(count)]
    return bucket.manifest([entry_for("fat.py", data)], meta={"strings": strings})


# -- exceptions that are not the sidecar's own --------------------------------------------------


def deeply_nested_json(depth: int = 100_000) -> bytes:
    return b'{"format": "s3sync/v1", "meta": ' + b"[" * depth + b"]" * depth + b"}"


def nested_files_entry(depth: int = 50_000) -> bytes:
    """A file entry with an extra field nested 50,000 lists deep."""
    entry = (
        b'{"path": "a.py", "size": 1, "sha256": "' + b"0" * 64 + b'", "extra": ' + b"[" * depth + b"]" * depth
    )
    return b'{"format": "s3sync/v1", "generation": 1, "files": [' + entry + b"}]}"


def manifest_with_a_lone_surrogate() -> bytes:
    entry = json.dumps(entry_for("dags/\udc80x.py", b"x = 1\n"))
    document = '{"format": "s3sync/v1", "release": "' + "0" * 20 + '", "generation": 5, "files": ['
    return (document + entry + "]}").encode()


def path_deeper_than_recursion(bucket: Bucket, depth: int = 1_500) -> bytes:
    """One file 1,500 folders deep (3 KB of path): enough to exhaust a recursive mkdir."""
    data = b"deep = True\n"
    bucket.put_object(data)
    return bucket.manifest([entry_for("/".join(["d"] * depth) + "/x.py", data)])


def first_release_without_its_lineage(bucket: Bucket) -> bytes:
    """The first release published, as LATEST.json again without its lineage and with a high
    generation: "a new history", which a bucket write alone must not make the sidecar follow."""
    listed = bucket.s3.list_objects_v2(Bucket=bucket.bucket, Prefix=f"{bucket.prefix}/releases/")["Contents"]
    oldest = min(
        (item for item in listed if item["Key"].endswith(".json")), key=lambda item: item["LastModified"]
    )
    document = json.loads(bucket.s3.get_object(Bucket=bucket.bucket, Key=oldest["Key"])["Body"].read())
    document.pop("lineage", None)
    return json.dumps(document | {"generation": 10**9}).encode()


def huge_generation_number() -> bytes:
    return b'{"format": "s3sync/v1", "generation": ' + b"9" * 100_000 + b', "files": []}'


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Callable[[Bucket], bytes]


HOSTILE = (
    Hostile("pack repeating a known path", pack_repeating_a_known_path),
    Hostile("pack with a huge PAX header", pack_with_a_huge_pax_header),
    Hostile("deep paths", lambda bucket: manifest_with_deep_paths()),
    Hostile("millions of tiny values", lambda bucket: manifest_of_many_tiny_values()),
    Hostile("a manifest at every limit", manifest_at_every_limit),
    Hostile("deeply nested JSON", lambda bucket: deeply_nested_json()),
    Hostile("nested file entry", lambda bucket: nested_files_entry()),
    Hostile("lone surrogate in a path", lambda bucket: manifest_with_a_lone_surrogate()),
    Hostile("path deeper than recursion", path_deeper_than_recursion),
    Hostile("huge generation number", lambda bucket: huge_generation_number()),
    Hostile("first release without its lineage", first_release_without_its_lineage),
)
