"""The status file the sync loop keeps, and `s3sync health`, which judges it."""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from s3sync.layout import write_atomic

DEFAULT_STATUS_FILE = Path("/tmp/s3sync/status.json")
DEFAULT_MAX_AGE = 300.0  # seconds since the last successful poll


@dataclass
class Status:
    pid: int
    source: str
    interval: float
    heartbeat_at: float  # the loop was making progress at this time
    last_success_at: float | None = None
    release: str | None = None
    generation: int | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    latest_refused: str | None = None  # why LATEST.json is not what is live (refused, older, ...)


def write(path: Path, status: Status) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(status)).encode())


def read(path: Path) -> Status:
    return Status(**json.loads(path.read_bytes()))


def stall_bound(interval: float) -> float:
    """How long the loop may go without a heartbeat before it counts as hung."""
    return max(3 * interval, 60.0)


def judge(path: Path, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """(healthy, one line why)."""
    now = time.time() if now is None else now
    try:
        status = read(path)
    except FileNotFoundError:
        return False, f"unhealthy: no status file at {path} (sidecar not started?)"
    except (ValueError, TypeError) as exc:
        return False, f"unhealthy: unreadable status file {path}: {exc}"
    beat_age = now - status.heartbeat_at
    if beat_age > stall_bound(status.interval):
        return False, f"unhealthy: sync loop stalled, last heartbeat {beat_age:.0f}s ago"
    if status.last_success_at is None:
        return False, f"unhealthy: no successful sync yet; last error: {status.last_error}"
    age = now - status.last_success_at
    if age > max_age:
        return False, (
            f"unhealthy: last successful sync {age:.0f}s ago (limit {max_age:g}s); "
            f"last error: {status.last_error}"
        )
    failing = (
        f"; the last {status.consecutive_failures} polls failed: {status.last_error}"
        if status.consecutive_failures
        else ""
    )
    if status.latest_refused:
        failing += f"; LATEST.json refused: {status.latest_refused}"
    if status.release is None:
        return True, f"healthy: no release published yet at {status.source}, polled {age:.0f}s ago{failing}"
    return True, (
        f"healthy: release {status.release} generation {status.generation}, synced {age:.0f}s ago{failing}"
    )
