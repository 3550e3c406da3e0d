"""Hand-made manifests, for feeding s3sync what a buggy or hostile publisher might write."""

import json

from s3sync.manifest import FileEntry, release_id


def manifest_bytes(entries: list[dict], **overrides) -> bytes:
    """A s3sync/v1 manifest of `entries`, with a correct release id where one can be computed."""
    try:
        rid = release_id([FileEntry(f["path"], f["size"], "sha256", f["sha256"]) for f in entries])
    except (KeyError, TypeError):
        rid = "0" * 20
    document = {
        "format": "s3sync/v1",
        "release": rid,
        "generation": 99,
        "created_at": "",
        "files": entries,
        "meta": {},
    }
    return json.dumps(document | overrides).encode()
