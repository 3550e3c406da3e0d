"""Validation of the relative paths a manifest, a listing or a pack may name."""

import unicodedata

from s3sync.errors import ManifestError

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255


def check_relative_path(path: object) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise ManifestError."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"path must be a non-empty string: {path!r}")
    if "\x00" in path:
        raise ManifestError(f"path contains NUL: {path!r}")
    if path.startswith("/"):
        raise ManifestError(f"path is absolute: {path!r}")
    if "\\" in path:
        raise ManifestError(f"path contains a backslash: {path!r}")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ManifestError(f"path longer than {MAX_PATH_BYTES} bytes: {path[:60]!r}...")
    for segment in path.split("/"):
        if segment == "":
            raise ManifestError(f"path has an empty segment: {path!r}")
        if segment in (".", ".."):
            raise ManifestError(f"path contains {segment!r}: {path!r}")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise ManifestError(f"path segment longer than {MAX_SEGMENT_BYTES} bytes: {path!r}")
    return path


def collision_key(path: str) -> str:
    """Paths that map to the same key would land on the same file somewhere."""
    return unicodedata.normalize("NFC", path).casefold()


def check_no_collisions(paths: list[str]) -> None:
    """Reject duplicates, Unicode/case aliases and a file that is also a directory."""
    seen: dict[str, str] = {}
    for path in paths:
        key = collision_key(path)
        if key in seen:
            raise ManifestError(f"paths collide after normalisation: {seen[key]!r} and {path!r}")
        seen[key] = path
    for key, path in seen.items():
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in seen:
                raise ManifestError(f"{seen[parent]!r} is a file but {path!r} needs it as a folder")
