"""Where the ALB's public keys live, and the api-server's in-memory copy of them.

The store is one JSON object `{kid: PEM}` in an S3 object (`s3://BUCKET/KEY`, through the
free S3 gateway endpoint) or an SSM parameter (`ssm:/NAME`, through the ssm interface
endpoint). It is filled from outside the VPC (`alb-keys fill`), because the ALB publishes
its keys only on the internet. When the api-server meets a key id it does not have, it
leaves a marker, `wanted/<kid>` beside the store, for the next fill to fetch.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from posixpath import dirname

import boto3
import botocore.exceptions
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from albauth.token import KEY_ID

log = logging.getLogger(__name__)
MAX_STORE_BYTES = 256 * 1024


class StoreError(Exception):
    """The store cannot be read or written, or holds something that is not a key map (one line)."""


def public_key(pem: str) -> EllipticCurvePublicKey:
    """A P-256 public key from PEM text, or ValueError saying why not."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a PEM public key ({error})") from None
    if not isinstance(key, EllipticCurvePublicKey) or not isinstance(key.curve, SECP256R1):
        raise ValueError("not a P-256 (ES256) public key")
    return key


def parse_keys(text: str | bytes, where: str) -> dict[str, str]:
    """The store's `{kid: PEM}`, each entry checked, or StoreError naming the first bad one."""
    try:
        keys = json.loads(text)
    except ValueError as error:
        raise StoreError(f"{where} is not JSON: {error}") from None
    if not isinstance(keys, dict):
        raise StoreError(f"{where} must hold a JSON object {{kid: PEM}}")
    for kid, pem in keys.items():
        if not KEY_ID.fullmatch(kid) or not isinstance(pem, str):
            raise StoreError(f"{where}: entry {kid!r} is not a key id with a PEM string")
        try:
            public_key(pem)
        except ValueError as error:
            raise StoreError(f"{where}: key {kid!r} is {error}") from None
    return keys


@dataclass(frozen=True)
class Location:
    """`s3://BUCKET/KEY` or `ssm:/NAME`; `wanted/<kid>` markers go beside it."""

    url: str
    scheme: str
    bucket: str = ""
    name: str = ""

    @classmethod
    def parse(cls, url: str) -> "Location":
        if url.startswith("s3://"):
            bucket, _, key = url[5:].partition("/")
            if bucket and key and not key.endswith("/"):
                return cls(url, "s3", bucket, key)
        elif url.startswith("ssm:"):
            name = url[4:]
            if name.startswith("/") and len(name) > 1 and not name.endswith("/"):
                return cls(url, "ssm", name=name)
        raise StoreError(f"key store {url!r} is not s3://BUCKET/KEY or ssm:/PARAMETER/NAME")

    def wanted_prefix(self) -> str:
        parent = dirname(self.name).rstrip("/")
        return f"{parent}/wanted/" if parent or self.scheme == "ssm" else "wanted/"


class KeyStore:
    """Reads and writes the key map and the wanted markers at one Location."""

    def __init__(self, location: Location):
        self.location = location
        self._client = boto3.client(location.scheme)

    def read(self) -> dict[str, str]:
        loc = self.location
        try:
            if loc.scheme == "s3":
                body = self._client.get_object(Bucket=loc.bucket, Key=loc.name)["Body"]
                text = body.read(MAX_STORE_BYTES + 1)
            else:
                text = self._client.get_parameter(Name=loc.name)["Parameter"]["Value"]
        except self._missing():
            return {}
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StoreError(f"cannot read {loc.url}: {error}") from None
        if len(text) > MAX_STORE_BYTES:
            raise StoreError(f"{loc.url} is larger than {MAX_STORE_BYTES} bytes")
        return parse_keys(text, loc.url)

    def write(self, keys: dict[str, str]) -> None:
        loc = self.location
        body = json.dumps(keys, indent=1, sort_keys=True)
        try:
            if loc.scheme == "s3":
                self._client.put_object(
                    Bucket=loc.bucket, Key=loc.name, Body=body.encode(), ContentType="application/json"
                )
            else:
                self._client.put_parameter(Name=loc.name, Value=body, Type="String", Overwrite=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise StoreError(f"cannot write {loc.url}: {error}") from None

    def want(self, kid: str) -> None:
        marker = self.location.wanted_prefix() + kid
        if self.location.scheme == "s3":
            self._client.put_object(Bucket=self.location.bucket, Key=marker, Body=b"")
        else:
            self._client.put_parameter(Name=marker, Value=kid, Type="String", Overwrite=True)

    def wanted(self) -> list[str]:
        prefix = self.location.wanted_prefix()
        if self.location.scheme == "s3":
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=prefix
            )
            names = [item["Key"] for page in pages for item in page.get("Contents", [])]
        else:
            pages = self._client.get_paginator("get_parameters_by_path").paginate(Path=prefix.rstrip("/"))
            names = [item["Name"] for page in pages for item in page["Parameters"]]
        kids = (name[len(prefix) :] for name in names)
        return sorted(kid for kid in kids if KEY_ID.fullmatch(kid))

    def unwant(self, kid: str) -> None:
        marker = self.location.wanted_prefix() + kid
        if self.location.scheme == "s3":
            self._client.delete_object(Bucket=self.location.bucket, Key=marker)
        else:
            try:
                self._client.delete_parameter(Name=marker)
            except self._missing():
                pass

    def _missing(self) -> type[Exception]:
        errors = self._client.exceptions
        return errors.NoSuchKey if self.location.scheme == "s3" else errors.ParameterNotFound


@dataclass
class KeyCache:
    """The keys in memory. An unknown kid re-reads the store at most once per `reload_seconds`
    and leaves a wanted marker once per kid (at most `max_wanted` per process)."""

    store: KeyStore
    reload_seconds: float = 60.0
    max_wanted: int = 20
    _keys: dict[str, EllipticCurvePublicKey] = field(default_factory=dict)
    _loaded_at: float = float("-inf")
    _marked: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """Read the store now; raises StoreError (the old keys stay)."""
        with self._lock:
            self._loaded_at = time.monotonic()
            pems = self.store.read()
            self._keys = {kid: public_key(pem) for kid, pem in pems.items()}

    def get(self, kid: str) -> EllipticCurvePublicKey | None:
        if kid in self._keys:
            return self._keys[kid]
        if time.monotonic() - self._loaded_at >= self.reload_seconds:
            try:
                self.load()
            except StoreError as error:
                log.error("ALB key store unreadable, keeping %d cached keys: %s", len(self._keys), error)
        key = self._keys.get(kid)
        if key is None:
            self._mark_wanted(kid)
        return key

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def _mark_wanted(self, kid: str) -> None:
        if kid in self._marked or len(self._marked) >= self.max_wanted:
            return
        self._marked.add(kid)
        try:
            self.store.want(kid)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            log.warning("could not leave a wanted marker for key id %r: %s", kid, error)
