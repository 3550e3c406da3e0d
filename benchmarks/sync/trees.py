"""The trees synced: N files of about SIZE bytes, each naming the version it belongs to, so a
reader can tell a tree that mixes two versions."""

import random
from pathlib import Path

MARKER = "# version "


def relative_path(index: int) -> str:
    return f"group{index % 100:02d}/dag_{index:05d}.py"


def content(index: int, version: int, size: int) -> bytes:
    head = f"{MARKER}{version}\n# dag {index}\n".encode()
    filler = random.Random(index * 1_000_003 + version).randbytes(max(0, size - len(head)) // 2).hex()
    return head + filler.encode()[: max(0, size - len(head))]


def write(root: Path, files: int, size: int, version: int = 0) -> None:
    for index in range(files):
        path = root / relative_path(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(index, version, size))


def rewrite(root: Path, indexes: list[int], size: int, version: int) -> None:
    """The same files, same sizes, new content (a same-size edit)."""
    for index in indexes:
        (root / relative_path(index)).write_bytes(content(index, version, size))


def version_of(path: Path) -> int | None:
    try:
        with path.open("rb") as file:
            first = file.readline().decode(errors="replace")
    except OSError:
        return None
    return int(first[len(MARKER) :]) if first.startswith(MARKER) else None
