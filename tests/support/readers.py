"""A reader like Airflow's: resolve ROOT/current, then read the whole tree it named."""

import itertools
import os
import re
import threading
from pathlib import Path

MARK = re.compile(rb"^release (\d+) ")


def read_tree(target: Path) -> dict[str, bytes] | None:
    """Every file of the tree `current` named when this call resolved it (None: no tree yet)."""
    try:
        top = os.open(target / "current", os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    files: dict[str, bytes] = {}
    try:
        for folder, _dirs, names, folder_fd in os.fwalk(".", dir_fd=top):
            for name in names:
                fd = os.open(name, os.O_RDONLY, dir_fd=folder_fd)
                with os.fdopen(fd, "rb") as f:
                    files[os.path.normpath(os.path.join(folder, name))] = f.read()
    finally:
        os.close(top)
    return files


def numbered_tree(number: int, files: int = 10, changed: int | None = None) -> dict[str, bytes]:
    """Release `number`: every file says which release it belongs to; one file comes and goes.

    With `changed`, only the first `changed` files carry the new number (the rest keep 0's bytes).
    """
    tree = {}
    for j in range(files):
        owner = number if changed is None or j < changed else 0
        tree[f"fixed/f{j:03d}.py"] = f"release {owner} file {j}\n".encode() + b"#" * (j * 7)
    tree[f"only/{number % 3}.py"] = f"release {number} rotating\n".encode()
    return tree


def which_release(files: dict[str, bytes], expected: dict[int, dict[str, bytes]]) -> int | None:
    """The release this snapshot is exactly equal to, or None if it is mixed or partial."""
    for number in {int(m.group(1)) for data in files.values() if (m := MARK.match(data))}:
        if expected.get(number) == files:
            return number
    return None


class TreeWatcher(threading.Thread):
    """Reads the live tree in a loop; records which release each pass saw (None: mixed/partial)."""

    def __init__(self, target: Path, expected: dict[int, dict[str, bytes]]):
        super().__init__(daemon=True)
        self.target = target
        self.expected = expected  # grows while the watcher runs
        self.seen: list[int | None] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            files = read_tree(self.target)
            if files is not None:
                self.seen.append(which_release(files, dict(self.expected)))

    def stop(self) -> None:
        self.halt.set()
        self.join()

    @property
    def bad_passes(self) -> int:
        return self.seen.count(None)

    @property
    def regressions(self) -> int:
        numbers = [n for n in self.seen if n is not None]
        return sum(later < earlier for earlier, later in itertools.pairwise(numbers))
