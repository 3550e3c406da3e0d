"""The scenarios, each run several times against one tool: cold sync, idle poll, one file
changed, 100 files changed (with a reader watching for a mixed tree), one file deleted."""

import shutil
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.sync import trees
from benchmarks.sync.server import Server, Traffic

SCENARIOS = ("cold sync", "idle poll", "1 changed", "100 changed", "1 deleted")


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    traffic: list[Traffic] = field(default_factory=list)

    def median(self) -> tuple[float, Traffic]:
        """The median wall time, and the traffic of the run that took it."""
        middle = statistics.median_low(self.seconds)
        return middle, self.traffic[self.seconds.index(middle)]


@dataclass
class Mixed:
    passes: int = 0
    mixed: int = 0


@dataclass
class PickedUp:
    changes: int = 0
    seen: int = 0


class Bench:
    def __init__(self, server: Server, tool, workdir: Path, targets: Path, files: int, size: int, runs: int):
        self.server, self.tool, self.files, self.size, self.runs = server, tool, files, size, runs
        self.workdir = workdir  # the source tree, on this disk
        self.targets = targets  # the live trees: this disk or the EFS model
        self.src = workdir / "src"
        self.version = 0
        self.results = {scenario: Result() for scenario in SCENARIOS}
        self.mixed = Mixed()
        self.picked_up = PickedUp()

    def run(self) -> None:
        trees.write(self.src, self.files, self.size)
        self.tool.upload(self.src, None, [])
        for run in range(self.runs):
            self._measure("cold sync", self.targets / f"cold{run}")
        target = self.targets / "cold0"
        for _ in range(self.runs):
            self._measure("idle poll", target)
        for _ in range(self.runs):
            self._change("1 changed", target, [0])
        for _ in range(self.runs):
            self._change("100 changed", target, list(range(min(100, self.files))), watch=True)
        index = self.files - 1
        for _ in range(self.runs):
            path = self.src / trees.relative_path(index)
            kept = path.read_bytes()
            path.unlink()
            self.tool.upload(self.src, [], [index])
            self._measure("1 deleted", target)
            self._count_picked_up({index: None}, target)
            path.write_bytes(kept)  # back for the next run (a small tree would run out), not measured
            self.tool.upload(self.src, [index], [])
            self.tool.poll(target)
        shutil.rmtree(self.targets, ignore_errors=True)

    def _change(self, scenario: str, target: Path, indexes: list[int], watch: bool = False) -> None:
        self.version += 1
        before = self._snapshot(target, indexes)
        after = dict.fromkeys(indexes, self.version)
        trees.rewrite(self.src, indexes, self.size, self.version)
        self.tool.upload(self.src, indexes, [])
        stop = threading.Event()
        reader = threading.Thread(target=self._watch, args=(target, before, after, stop), daemon=True)
        if watch:
            reader.start()
        try:
            self._measure(scenario, target)
        finally:
            stop.set()
            if watch:
                reader.join()
        self._count_picked_up(after, target)

    def _count_picked_up(self, expected: dict[int, int | None], target: Path) -> None:
        self.picked_up.changes += 1
        self.picked_up.seen += self._snapshot(target, list(expected)) == expected

    def _snapshot(self, target: Path, indexes: list[int]) -> dict[int, int | None]:
        """The version of each file in the live tree, resolved once, as a DAG parser lists a folder."""
        live = self.tool.live(target)
        root = live.resolve() if live.exists() else live
        return {index: trees.version_of(root / trees.relative_path(index)) for index in indexes}

    def _measure(self, scenario: str, target: Path) -> None:
        self.server.reset()
        seconds = self.tool.poll(target)
        result = self.results[scenario]
        result.seconds.append(seconds)
        result.traffic.append(self.server.traffic())

    def _watch(self, target: Path, before: dict, after: dict, stop: threading.Event) -> None:
        """A reader during the change: each pass must see all the old files or all the new."""
        while not stop.is_set():
            seen = self._snapshot(target, list(after))
            self.mixed.passes += 1
            self.mixed.mixed += seen not in (before, after)
