"""Hostile releases, class 1: unbounded work from a small input.

Every release is refused or applied in time and memory bounded by the configured limits
(files, bytes, path length and depth), in time linear in the manifest's size; the cheap
checks run before the expensive ones; the heartbeat beats during long legitimate work.
"""

import itertools
import json
import os
import time

import pytest

from s3sync.manifest import Limits, parse
from tests.support import hostile
from tests.support.trees import (
    cli,
    live_snapshot,
    measured_run,
    start_sidecar,
    stop_sidecar,
    wait_for,
    write_tree,
)

# `python -m s3sync` with boto3 loaded is about 60 MB here: what a release may add is far below these.
PEAK_MB = 150


def sync_once(live_root, *extra) -> tuple[int, str, str, float, float]:
    return measured_run("sync", "--once", "--source", live_root.source, "--target", live_root.target, *extra)


def one_line_failure(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 1, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("s3sync: sync failed"), err[-2000:]
    return lines[0]


def test_a_pack_repeating_a_known_path_is_given_up_at_once(live_root):
    live_root.bucket.put_latest(hostile.pack_repeating_a_known_path(live_root.bucket, repeats=100_000))
    code, out, err, seconds, peak = sync_once(live_root)
    assert code == 0, err
    assert seconds < 15 and peak < PEAK_MB, (seconds, peak)
    assert "pack" in out and "damaged" in out  # given up, its files fetched one by one
    files = hostile.many_files(60, "repeats")
    assert live_snapshot(live_root.target) == {p: hostile.sha(d) for p, d in files.items()}


def test_a_huge_pax_header_in_a_pack_is_never_held_in_memory(live_root):
    live_root.bucket.put_latest(
        hostile.pack_with_a_huge_pax_header(live_root.bucket, header_bytes=128 * 1024**2)
    )
    code, _out, err, _seconds, peak = sync_once(live_root)
    assert code == 0, err
    files = hostile.many_files(60, "pax")
    assert live_snapshot(live_root.target) == {p: hostile.sha(d) for p, d in files.items()}
    assert peak < PEAK_MB, peak


def test_deep_paths_are_refused_before_any_work_per_folder(live_root):
    live_root.bucket.put_latest(hostile.manifest_with_deep_paths())
    code, _out, err, seconds, peak = sync_once(live_root)
    assert "deep" in one_line_failure(code, err)
    assert seconds < 10 and peak < PEAK_MB, (seconds, peak)
    live_root.assert_untouched()


def test_millions_of_tiny_json_values_are_refused_before_they_are_built(live_root):
    live_root.bucket.put_latest(hostile.manifest_of_many_tiny_values())
    code, _out, err, _seconds, peak = sync_once(live_root)
    one_line_failure(code, err)
    assert peak < PEAK_MB, peak
    live_root.assert_untouched()


def test_the_cheap_checks_come_first(live_root):
    """A bad release id is found before 2,000 paths 2,000 folders deep are looked at."""
    raw = json.loads(hostile.manifest_with_deep_paths())
    live_root.bucket.put_latest(json.dumps(raw | {"release": "not-an-id"}).encode())
    code, _out, err, seconds, _peak = sync_once(live_root)
    assert "release id must be 20 lowercase hex characters" in one_line_failure(code, err)
    assert seconds < 10, seconds
    live_root.assert_untouched()


@pytest.mark.parametrize("count", [1_000, 2_000])
def test_path_checks_are_linear_even_with_a_raised_depth_limit(count):
    """2,000-folder paths cost what their bytes cost: no per-folder rescans of the path."""
    raw = hostile.manifest_with_deep_paths(count=count, depth=2_000)
    started = time.monotonic()
    manifest = parse(raw, Limits(max_path_depth=4_096), "LATEST.json")
    seconds = time.monotonic() - started
    assert len(manifest.files) == count
    assert seconds < count / 1_000, seconds  # was ~13 ms a path


@pytest.mark.slow
def test_the_heartbeat_beats_while_a_slow_pack_is_unpacked(live_root, s3_server, tmp_path):
    status_file = tmp_path / "status.json"
    sidecar = start_sidecar(live_root.source, live_root.target, status_file, "--interval", "0.5")
    try:
        wait_for(status_file.exists, 30, 0.05, "the first status")
        files = {f"p/f{i:03d}.py": os.urandom(1024).hex().encode() for i in range(150)}  # 300 KB packed
        assert cli("publish", write_tree(tmp_path / "next", files), live_root.source) == 0
        s3_server.fault(method="GET", contains=".tar.gz", trickle=5)
        beats, started = [], time.monotonic()
        while live_snapshot(live_root.target) != {p: hostile.sha(d) for p, d in files.items()}:
            assert time.monotonic() - started < 60, "the release never went live"
            beat = json.loads(status_file.read_bytes())["heartbeat_at"]
            if not beats or beats[-1] != beat:
                beats.append(beat)
            time.sleep(0.1)
        assert time.monotonic() - started > 4.5  # the pack did trickle in
        gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
        assert max(gaps) < 3, gaps  # a beat every 2 s at most (Loop.heartbeat)
    finally:
        stop_sidecar(sidecar)
