"""The bounded-resource check: one `s3sync run` process is given every hostile release in
turn. It stays up, under 200 MB of resident memory, answers its health check well within the
ECS probe interval, and each verdict (refused, or applied with the pack given up) comes in
seconds. Prints a table of what each release cost."""

import json
import subprocess
import sys
import time

import pytest

from tests.support.hostile import HOSTILE, sha
from tests.support.trees import (
    cli,
    live_snapshot,
    peak_rss_mb,
    start_sidecar,
    stop_sidecar,
    wait_for,
    write_tree,
)

pytestmark = pytest.mark.slow

PROBE_INTERVAL = 30  # seconds: the sidecar's ECS health check (config/ecs/containers/dags-sync.json)
RSS_LIMIT_MB = 200
VERDICTS = ("release refused", "release live", "remote release not applied")


def records(status_file) -> list[dict]:
    with open(f"{status_file}.log") as log:
        return [json.loads(line) for line in log if line.startswith("{")]


def is_verdict(record: dict, etag: str) -> bool:
    """A judgement of the LATEST.json with this ETag (refusals name it; a swap follows it)."""
    if record["event"] == "release refused":
        return record.get("etag") == etag
    return record["event"] in VERDICTS


def health(status_file) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "s3sync", "health", "--status-file", str(status_file)],
        capture_output=True,
        text=True,
        timeout=PROBE_INTERVAL,
    )
    return done.returncode, done.stdout.strip(), time.monotonic() - started


def test_the_sidecar_stays_small_and_healthy_whatever_latest_holds(live_root, tmp_path):
    status_file = tmp_path / "status.json"
    sidecar = start_sidecar(live_root.source, live_root.target, status_file, "--interval", "0.5")
    rows = []
    try:
        wait_for(status_file.exists, 30, 0.05, "the first status")
        for case in HOSTILE:
            seen, started = len(records(status_file)), time.monotonic()
            etag = live_root.bucket.put_latest(case.build(live_root.bucket))
            verdict = wait_for(
                lambda seen=seen, etag=etag: next(
                    (r for r in records(status_file)[seen:] if is_verdict(r, etag)), None
                ),
                PROBE_INTERVAL,
                0.05,
                f"a verdict on {case.name}",
            )
            seconds = time.monotonic() - started
            code, _line, probe_seconds = health(status_file)
            why = verdict.get("error") or verdict.get("detail") or verdict.get("release", "")
            rows.append(
                (case.name, verdict["event"], seconds, peak_rss_mb(sidecar.pid), code, probe_seconds, why)
            )
            assert sidecar.poll() is None, f"the sidecar exited on {case.name}"
        files = {"dag.py": "after = True\n"}
        assert cli("publish", write_tree(tmp_path / "after", files), live_root.source) == 0
        wait_for(lambda: live_snapshot(live_root.target) == {"dag.py": sha(b"after = True\n")}, 30, 0.1)
    finally:
        stop_sidecar(sidecar)
        print(f"\n{'hostile release':<34} {'verdict':<27} {'seconds':>7} {'peak MB':>8} {'health':>7}  why")
        for name, event, seconds, peak, code, probe, why in rows:
            print(
                f"{name:<34} {event:<27} {seconds:>7.2f} {peak:>8.1f} {code:>3} {probe:>4.1f}s  {why[-70:]}"
            )
    for name, _event, seconds, peak, code, probe, _why in rows:
        assert peak < RSS_LIMIT_MB, (name, peak)
        assert code == 0 and probe < 10, name
        assert seconds < PROBE_INTERVAL, (name, seconds)
