"""The sync loop (`run`) and the init-container mode (`sync --once`).

Whatever a remote release holds, a poll ends in one of a few states, and the loop goes on:
- nothing changed (one conditional GET);
- a release went live, or LATEST.json was judged and not applied (older, another history);
- LATEST.json was refused (malformed, unsafe, over a limit, bytes wrong, or a bug it set off):
  the last good release stays live, one line is logged, and the same LATEST.json is judged
  again only after a backoff; meanwhile each poll is one conditional GET asking whether it changed;
- S3 or the local disk failed: retried with backoff; health turns red when it lasts.
"""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from s3sync import metrics, status
from s3sync.errors import (
    BadInput,
    Busy,
    ManifestError,
    NoRelease,
    RefusedRelease,
    S3SyncError,
    TargetError,
    TransientError,
    one_line,
)
from s3sync.layout import Layout
from s3sync.pull import Outcome, PullSettings, apply, repair_current
from s3sync.remote import Fetched, Remote, backoff
from s3sync.retention import prune

MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class Refusal:
    etag: str | None  # of the LATEST.json refused (None: a listing, or no answer to compare)
    reason: str
    attempts: int
    judge_again_at: float  # time.monotonic(): when the same LATEST.json is judged again


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
        self.refusal: Refusal | None = None
        self.judge_again_after = 10.0  # first backoff before a refused LATEST.json is judged again
        self.progress = lambda: None
        self.trash_filled = lambda: None  # called when old releases went to the trash

    def prepare(self) -> None:
        for repaired in self.layout.prepare():
            self.log.warning("volume repaired", detail=repaired)
        with self.layout.lock:
            removed = self.layout.remove_orphans()
        if removed:
            self.log.info("removed orphan staging", staging=removed)

    def check_volume(self) -> None:
        """Before each poll: state folders are real folders, `current` names a kept release."""
        for repaired in self.layout.repair_folders():
            self.log.warning("volume repaired", detail=repaired)
        problem = repair_current(
            self.layout, self.settings.limits, self.progress, self.settings.fs_concurrency
        )
        if problem is not None:
            self.log.warning("current repaired", detail=problem)
            self.etag = None  # judge LATEST.json again, whatever its ETag

    def poll(self) -> Outcome | None:
        """None when nothing changed remotely (one conditional GET). Raises RefusedRelease when
        LATEST.json cannot go live, S3SyncError for S3 or disk failures."""
        self.check_volume()
        if self.pinned:
            if self.layout.live_release() == self.pinned:
                return None  # releases are immutable: a pin that is live stays right
            return self._apply(self.remote.release(self.pinned))
        refusal = self.refusal
        settled = refusal is not None and time.monotonic() < refusal.judge_again_at
        if settled and refusal.etag is None:
            raise RefusedRelease(refusal.reason, judged=False)  # nothing to ask S3 cheaply: wait
        try:
            fetched = self.remote.latest(refusal.etag if settled else self.etag)
        except (TransientError, TargetError):
            raise
        except ManifestError as exc:
            raise self._refuse(exc.etag, one_line(exc)) from None
        except Exception as exc:
            raise self._refuse(None, one_line(exc)) from None
        if fetched is None:
            if settled:
                raise RefusedRelease(refusal.reason, judged=False)
            return None
        try:
            outcome = self._apply(fetched)
        except (TransientError, TargetError):
            raise
        except Exception as exc:  # the release's fault, or a bug it set off: not again at once
            raise self._refuse(fetched.etag, one_line(exc)) from None
        self.refusal = None
        return outcome

    def _refuse(self, etag: str | None, reason: str) -> RefusedRelease:
        previous = self.refusal
        attempts = previous.attempts + 1 if previous is not None and previous.etag == etag else 1
        delay = min(self.judge_again_after * 2 ** (attempts - 1), MAX_BACKOFF)
        self.refusal = Refusal(etag, reason, attempts, time.monotonic() + delay)
        return RefusedRelease(reason)

    def _apply(self, fetched: Fetched) -> Outcome:
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
        elif outcome.action in ("older", "other-lineage"):
            self.log.warning(
                "remote release not applied",
                detail=outcome.not_applied(self.layout.live_release()),
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
            self.trash_filled()
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
        self._trash_filled = threading.Event()
        syncer.progress = self.heartbeat
        syncer.trash_filled = self._trash_filled.set

    def heartbeat(self) -> None:
        now = time.time()
        if now - self._last_beat >= 2.0:
            self._last_beat = now
            self.status.heartbeat_at = now
            status.write(self.settings.status_file, self.status)

    def run(self) -> int:
        self.syncer.judge_again_after = self.settings.interval
        self.syncer.prepare()
        sweeper = threading.Thread(target=self._sweep_until_stopped, name="sweeper", daemon=True)
        sweeper.start()
        failures = 0
        while not self.stop.is_set():
            failures = self.once_in_loop(failures)
            wait = (
                self.settings.interval
                if failures == 0
                else min(self.settings.interval * 2 ** (failures - 1), MAX_BACKOFF)
            )
            self.stop.wait(wait)
        self._trash_filled.set()
        sweeper.join(10)
        self.log.info("stopped")
        return 0

    def _sweep_until_stopped(self) -> None:
        """Deletes what pruning moved to the trash, beside the polls: on EFS deleting a release
        is a round trip per file, which must not delay the next release."""
        while not self.stop.is_set():
            self._trash_filled.wait(self.settings.gc_interval)
            self._trash_filled.clear()
            try:
                swept = self.syncer.layout.sweep_trash(self.syncer.settings.fs_concurrency)
            except Exception as exc:
                self.log.error("trash sweep failed", error=one_line(exc))
                continue
            if swept:
                self.log.info("trash swept", entries=swept)

    def once_in_loop(self, failures: int) -> int:
        """One poll, whatever happens in it; the consecutive failures after it."""
        started = time.monotonic()
        waiting = None
        try:
            outcome = self.syncer.poll()
        except (NoRelease, Busy) as exc:
            # Nothing published yet, or another sidecar on this ROOT making the release, is a
            # state to wait in at the normal pace, not a failure: backing off would delay the
            # release, and failing health would restart the task.
            if self.status.last_error != str(exc):
                self.log.info("waiting", detail=str(exc))
            waiting, outcome = str(exc), None
        except RefusedRelease as exc:
            self._refused(str(exc), exc.judged)
            return 0  # judged again after its own backoff; polls go on at the interval
        except Exception as exc:  # S3 or the disk failed, or a bug: the loop stays up, health says why
            return self._failed(one_line(exc), failures + 1)
        now = time.time()
        self.status.last_success_at = now
        self.status.consecutive_failures = 0
        self.status.last_error = waiting
        if outcome is not None:
            self.status.latest_refused = outcome.not_applied(self.syncer.layout.live_release())
        self._note_live()
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
        self._release_age(now)
        return 0

    def _refused(self, reason: str, judged: bool) -> None:
        """LATEST.json cannot go live: S3 answered, the last good release stays live. One line
        each time it is judged; a poll that only finds it unchanged logs at debug level."""
        refusal = self.syncer.refusal
        again_in = round(refusal.judge_again_at - time.monotonic(), 1) if refusal else None
        etag = refusal.etag if refusal else None
        if not judged:
            self.log.debug("release still refused", error=reason, etag=etag, judged_again_in=again_in)
        else:
            self.log.error("release refused", error=reason, etag=etag, judged_again_in=again_in)
            self._metric({"SyncFailures": (1, "Count")})
        self.status.last_success_at = time.time()
        self.status.consecutive_failures = 0
        self.status.last_error = None
        self.status.latest_refused = reason
        self._note_live()

    def _failed(self, reason: str, failures: int) -> int:
        self.log.error("sync failed", error=reason, consecutive_failures=failures)
        self.status.consecutive_failures = failures
        self.status.last_error = reason
        self._beat_now()
        self._metric({"SyncFailures": (1, "Count")})
        return failures

    def _note_live(self) -> None:
        state = self.syncer.layout.read_state()
        live = self.syncer.layout.live_release()
        self.status.release = live
        self.status.generation = state.generation if live is not None and live == state.release else None
        self._beat_now()

    def _release_age(self, now: float) -> None:
        if now - self._last_metrics >= self.settings.metrics_interval:
            self._last_metrics = now
            history = self.syncer.layout.read_state().history
            live_since = history[-1].live_from if history else now
            self._metric({"ReleaseAge": (now - live_since, "Seconds")})

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
    """Converge once, retrying transient errors until `timeout`. (ok, one line): ok only when
    one of ROOT's own verified releases is live."""
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
        except Exception as exc:
            return False, f"sync failed: {one_line(exc)}"
        live = syncer.layout.live_release()
        not_applied = outcome.not_applied(live) if outcome is not None else None
        if live is None:
            return False, f"sync failed: no release is live under {syncer.layout.root}" + (
                f"; {not_applied}" if not_applied else ""
            )
        return True, f"release {live} is live" + (f"; {not_applied}" if not_applied else "")
