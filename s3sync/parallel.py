"""File-system changes issued concurrently, one folder per worker at a time.

On NFS (EFS) every change (create, link, unlink, mkdir) is a network round trip of a few
milliseconds, and the client serialises the changes to one folder while changes to different
folders overlap. So a release's files are grouped by folder: each group goes in order on one
worker, the groups run side by side.
"""

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def folder_of(path: str) -> str:
    return path.rpartition("/")[0]


def per_folder(items: Iterable[Item], path_of: Callable[[Item], str]) -> list[list[Item]]:
    """The items grouped by the folder of their path, the biggest groups first (they bound the
    wall time, so they start first)."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(folder_of(path_of(item)), []).append(item)
    return sorted(groups.values(), key=len, reverse=True)


def run_per_folder(
    groups: list[list[Item]], work: Callable[[list[Item]], Result], workers: int
) -> list[Result]:
    """`work` on every group, up to `workers` at once; raises the first failure."""
    if workers <= 1 or len(groups) <= 1:
        return [work(group) for group in groups]
    with ThreadPoolExecutor(min(workers, len(groups)), thread_name_prefix="fs") as pool:
        return list(pool.map(work, groups))
