"""The sync loop (`run`) and the init-container mode (`sync --once`)."""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from s3sync import metrics, status
from s3sync.errors import BadInput, NoRelease, S3SyncError
from s3sync.layout import Layout
from s3sync.pull import Outcome, PullSettings, apply
from s3sync.remote import Remote, backoff
from s3sync.retention import prune

MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class LoopSettings:
    interval: float = 10.0
    status_file: Path = status.DEFAULT_STATUS_FILE
    metrics_interval: float = 60.0
    emit_metrics: bool = True
    gc_interval: float = 60.0  # old releases are also collected after every swap


class Syncer:
    """One poll: fetch what should be live, make it live. Remembers LATEST's ETag."""

    def __init__(
        self,
        remote: Remote,
        layout: Layout,
        settings: PullSettings,
        pinned: str | None,
        log,
        in_use: Callable[[], set[str]] | None = None,
    ):
        self.remote = remote
        self.layout = layout
        self.settings = settings
        self.pinned = pinned
        self.log = log
        self.in_use = in_use  # releases Airflow still needs (s3sync.inuse); None: no such hook
        self.etag: str | None = None
        self.progress = lambda: None

    def prepare(self) -> None:
        self.layout.prepare()
        with self.layout.lock:
            removed = self.layout.remove_orphans()
        if removed:
            self.log.info("removed orphan staging", staging=removed)

    def poll(self) -> Outcome | None:
        """None when nothing changed remotely (one conditional GET)."""
        if self.pinned and self.layout.live_release() == self.pinned:
            return None  # releases are immutable: a pin that is live stays right
        if self.pinned:
            fetched = self.remote.release(self.pinned)
        else:
            fetched = self.remote.latest(self.etag)
            if fetched is None:
                return None
        started = time.monotonic()
        outcome = apply(
            fetched, self.remote, self.layout, self.settings, pinned=bool(self.pinned), progress=self.progress
        )
        self.etag = fetched.etag  # only after success: a failed sync is retried in full
        if outcome.pack_problem:
            self.log.warning("release pack given up; its files came one by one", detail=outcome.pack_problem)
        if outcome.action == "swapped":
            self.log.info(
                "release live",
                release=outcome.release,
                generation=outcome.generation,
                files_fetched=outcome.files_fetched,
                bytes_fetched=outcome.bytes_fetched,
                files_linked=outcome.files_linked,
                used_pack=outcome.used_pack,
                seconds=round(time.monotonic() - started, 3),
            )
            self.collect()
        elif outcome.action == "older":
            self.log.warning(
                "remote release is older than the live one; not moving backwards",
                remote_release=outcome.release,
                remote_generation=outcome.generation,
            )
        return outcome

    def collect(self) -> list[str]:
        """Delete old releases and orphan staging; the releases removed. When the in-use hook
        cannot answer, no release is deleted this time."""
        in_use: frozenset[str] = frozenset()
        if self.in_use is not None:
            try:
                in_use = frozenset(self.in_use())
            except S3SyncError as exc:
                self.log.error("old releases kept: releases in use unknown", error=str(exc))
                return []
        with self.layout.lock:
            removed = prune(self.layout, self.settings.keep, self.settings.grace, time.time(), in_use)
            orphans = self.layout.remove_orphans()
        if removed or orphans:
            self.log.info("pruned", releases=removed, staging=orphans, in_use=sorted(in_use))
        return removed


class Loop:
    """Poll forever; keep the status file and metrics current."""

    def __init__(self, syncer: Syncer, settings: LoopSettings, source: str, log):
        self.syncer = syncer
        self.settings = settings
        self.log = log
        self.stop = threading.Event()
        self.status = status.Status(
            pid=os.getpid(), source=source, interval=settings.interval, heartbeat_at=time.time()
        )
        self._last_beat = 0.0
        self._last_metrics = 0.0
        self._last_gc = time.monotonic()
        syncer.progress = self.heartbeat

    def heartbeat(self) -> None:
        now = time.time()
        if now - self._last_beat >= 2.0:
            self._last_beat = now
            self.status.heartbeat_at = now
            status.write(self.settings.status_file, self.status)

    def run(self) -> int:
        self.syncer.prepare()
        failures = 0
        while not self.stop.is_set():
            failures = self.once_in_loop(failures)
            wait = (
                self.settings.interval
                if failures == 0
                else min(self.settings.interval * 2 ** (failures - 1), MAX_BACKOFF)
            )
            self.stop.wait(wait)
        self.log.info("stopped")
        return 0

    def once_in_loop(self, failures: int) -> int:
        started = time.monotonic()
        waiting = None
        try:
            outcome = self.syncer.poll()
        except NoRelease as exc:
            # Nothing published yet is a state to wait in at the normal pace, not a failure:
            # backing off would delay the first release, and failing health would restart the task.
            if self.status.last_error != str(exc):
                self.log.info("waiting for a first release", detail=str(exc))
            waiting, outcome = str(exc), None
        except S3SyncError as exc:
            failures += 1
            self.log.error("sync failed", error=str(exc), consecutive_failures=failures)
            self.status.consecutive_failures = failures
            self.status.last_error = str(exc)
            self._beat_now()
            self._metric({"SyncFailures": (1, "Count")})
            return failures
        now = time.time()
        self.status.last_success_at = now
        self.status.consecutive_failures = 0
        self.status.last_error = waiting
        state = self.syncer.layout.read_state()
        self.status.release, self.status.generation = state.release or None, state.generation
        self._beat_now()
        if outcome is not None and outcome.action == "swapped":
            self._metric(
                {
                    "SyncDuration": ((time.monotonic() - started) * 1000, "Milliseconds"),
                    "FilesChanged": (outcome.files_fetched, "Count"),
                    "BytesChanged": (outcome.bytes_fetched, "Bytes"),
                    "SyncFailures": (0, "Count"),
                }
            )
            self._last_gc = time.monotonic()  # poll() collected after the swap
        elif time.monotonic() - self._last_gc >= self.settings.gc_interval:
            self._last_gc = time.monotonic()
            self._collect()
        if now - self._last_metrics >= self.settings.metrics_interval:
            self._last_metrics = now
            live_since = state.history[-1].live_from if state.history else now
            self._metric({"ReleaseAge": (now - live_since, "Seconds")})
        return 0

    def _collect(self) -> None:
        """Runs between polls: runs still in progress may have ended since the last swap."""
        try:
            self.syncer.collect()
        except S3SyncError as exc:
            self.log.error("old releases kept: collection failed", error=str(exc))

    def _beat_now(self) -> None:
        self.status.heartbeat_at = time.time()
        self._last_beat = self.status.heartbeat_at
        status.write(self.settings.status_file, self.status)

    def _metric(self, values: dict) -> None:
        if self.settings.emit_metrics:
            metrics.emit(values, {"Source": self.status.source})


def sync_once(syncer: Syncer, timeout: float, log) -> tuple[bool, str]:
    """Converge once, retrying transient errors until `timeout`. (ok, one line)."""
    deadline = time.monotonic() + timeout
    syncer.prepare()
    attempt = 0
    while True:
        attempt += 1
        try:
            syncer.etag = None
            outcome = syncer.poll()
        except BadInput as exc:
            return False, f"sync failed: {exc}"
        except S3SyncError as exc:
            if time.monotonic() >= deadline:
                return False, f"sync failed after {attempt} attempts in {timeout:g}s: {exc}"
            log.warning("sync attempt failed; retrying", error=str(exc), attempt=attempt)
            backoff(attempt, base=0.5, cap=min(10.0, max(0.0, deadline - time.monotonic())))
            continue
        live = syncer.layout.live_release()
        if outcome is not None and outcome.action == "older":
            return True, (
                f"release {live} is live; the remote release {outcome.release} "
                f"(generation {outcome.generation}) is older and was not applied"
            )
        return True, f"release {live} is live"
