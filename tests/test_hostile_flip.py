"""Slow tier: for two minutes LATEST.json flips between a hostile release and a good one at
every poll. The sidecar never exits, every good release goes live, nothing is written outside
ROOT (the fence), and its memory stays bounded."""

import itertools
import json
import time

import pytest

from tests.support.hostile import HOSTILE
from tests.support.trees import cli, peak_rss_mb, start_sidecar, stop_sidecar, wait_for, write_tree

pytestmark = pytest.mark.slow

FLIP_FOR = 120.0
POLL = 1.0


def test_latest_flipping_between_hostile_and_good_releases(live_root, tmp_path):
    status_file = tmp_path / "status.json"
    sidecar = start_sidecar(live_root.source, live_root.target, status_file, "--interval", str(POLL))
    published, hostile_puts = [], 0
    try:
        wait_for(status_file.exists, 30, 0.05, "the first status")
        deadline = time.monotonic() + FLIP_FOR
        for number, case in enumerate(itertools.cycle(HOSTILE)):
            if time.monotonic() > deadline:
                break
            live_root.bucket.put_latest(case.build(live_root.bucket))
            hostile_puts += 1
            time.sleep(POLL * 1.5)
            tree = write_tree(tmp_path / f"good{number}", {"dag.py": f"good = {number}\n"})
            assert cli("publish", tree, live_root.source) == 0
            published.append(json.loads(live_root.bucket.get_latest())["release"])
            time.sleep(POLL * 1.5)
            assert sidecar.poll() is None, f"the sidecar exited after {case.name}"
        peak = peak_rss_mb(sidecar.pid)
    finally:
        stop_sidecar(sidecar)
    with open(f"{status_file}.log") as log:
        went_live = {r.get("release") for r in map(json.loads, log) if r["event"] == "release live"}
    missed = [release for release in published if release not in went_live]
    print(f"\n{hostile_puts} hostile, {len(published)} good releases in {FLIP_FOR:g}s; peak {peak:.1f} MB")
    assert len(published) >= 20 and not missed, missed
    assert peak < 200, peak
