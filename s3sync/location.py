"""Where things live in the bucket: `s3://bucket/prefix` and the keys under it."""

from dataclasses import dataclass

from s3sync.errors import BadInput

LATEST = "LATEST.json"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @classmethod
    def parse(cls, url: str) -> "S3Location":
        if not url.startswith("s3://"):
            raise BadInput(f"not an S3 URL (want s3://bucket/prefix): {url!r}")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise BadInput(f"S3 URL has no bucket: {url!r}")
        return cls(bucket, prefix.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def latest_key(self) -> str:
        return self.key(LATEST)

    @property
    def releases_prefix(self) -> str:
        return self.key("releases/")

    def release_key(self, release: str) -> str:
        return self.key(f"releases/{release}.json")

    def pack_key(self, release: str) -> str:
        return self.key(f"releases/{release}.tar.gz")

    @property
    def objects_prefix(self) -> str:
        return self.key("objects/sha256/")

    def object_key(self, sha256: str) -> str:
        return self.key(f"objects/sha256/{sha256[:2]}/{sha256}")

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"
