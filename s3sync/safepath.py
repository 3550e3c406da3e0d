"""Validation of the relative paths a manifest, a listing or a pack may name."""

import unicodedata
from collections.abc import Iterable

from s3sync.errors import ManifestError

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255


def shown(path: str, limit: int = 100) -> str:
    """`path` for a one-line message: repr'd, and cut short when long."""
    text = repr(path)
    return text if len(text) <= limit else f"{text[:limit]}...({len(path)} characters)"


def check_relative_path(path: object, max_depth: int | None = None) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise ManifestError."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"path must be a non-empty string: {path!r:.100}")
    if "\x00" in path:
        raise ManifestError(f"path contains NUL: {shown(path)}")
    if path.startswith("/"):
        raise ManifestError(f"path is absolute: {shown(path)}")
    if "\\" in path:
        raise ManifestError(f"path contains a backslash: {shown(path)}")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise ManifestError(f"path is not valid Unicode (a lone surrogate): {shown(path)}") from None
    if size > MAX_PATH_BYTES:
        raise ManifestError(f"path longer than {MAX_PATH_BYTES} bytes: {shown(path, 60)}")
    segments = path.split("/")
    if max_depth is not None and len(segments) > max_depth:
        raise ManifestError(
            f"path is {len(segments)} levels deep, over the limit of {max_depth}: {shown(path, 60)}"
        )
    for segment in segments:
        if segment == "":
            raise ManifestError(f"path has an empty segment: {shown(path)}")
        if segment in (".", ".."):
            raise ManifestError(f"path contains {segment!r}: {shown(path)}")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise ManifestError(f"path segment longer than {MAX_SEGMENT_BYTES} bytes: {shown(path)}")
    return path


def collision_key(path: str) -> str:
    """Paths that map to the same key would land on the same file somewhere."""
    return unicodedata.normalize("NFC", path).casefold()


def check_no_collisions(paths: Iterable[str], max_folders: int | None = None) -> None:
    """Reject duplicates, Unicode/case aliases and a file that is also a folder; with
    `max_folders`, a tree of more folders than that.

    Linear in the paths' total length: every path is walked once, folder by folder, through
    a tree of (parent node, segment) pairs, so a deep path costs its length, not its square.
    """
    nodes: dict[tuple[int, str], int] = {}
    file_at: dict[int, str] = {}  # node -> the path that is a file there
    folder_for: dict[int, str] = {}  # node -> the first path that needs it as a folder
    for path in paths:
        *folders, name = collision_key(path).split("/")
        node = 0
        for segment in folders:
            child = nodes.get((node, segment))
            if child is None:
                child = nodes[(node, segment)] = len(nodes) + 1
                folder_for[child] = path
                if max_folders is not None and len(folder_for) > max_folders:
                    raise ManifestError(f"more than {max_folders} folders, over the limit")
            elif child in file_at:
                raise ManifestError(
                    f"{shown(file_at[child])} is a file but {shown(path)} needs it as a folder"
                )
            node = child
        leaf = nodes.get((node, name))
        if leaf in file_at:
            raise ManifestError(
                f"paths collide after normalisation: {shown(file_at[leaf])} and {shown(path)}"
            )
        if leaf is not None:
            raise ManifestError(f"{shown(path)} is a file but {shown(folder_for[leaf])} needs it as a folder")
        leaf = nodes[(node, name)] = len(nodes) + 1
        file_at[leaf] = path
