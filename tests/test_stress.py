"""Stress tier: readers across hundreds of swaps, kill -9 mid-sync, four sidecars on one ROOT."""

import json
import os
import random
import signal
import time

import pytest

from tests.support.readers import TreeWatcher, numbered_tree, read_tree, which_release
from tests.support.releases import Releases, live_release, wait_live
from tests.support.trees import (
    cli_process,
    staging_entries,
    start_sidecar,
    stop_sidecar,
    wait_for,
    write_tree,
)


def test_reader_check_detects_mixed_and_partial_trees(tmp_path):
    expected = {1: numbered_tree(1), 2: numbered_tree(2)}
    write_tree(tmp_path / "r1", expected[1])
    os.symlink("r1", tmp_path / "current")
    assert which_release(read_tree(tmp_path), expected) == 1
    (tmp_path / "r1" / "fixed" / "f003.py").write_bytes(expected[2]["fixed/f003.py"])
    assert which_release(read_tree(tmp_path), expected) is None  # mixed
    (tmp_path / "r1" / "fixed" / "f003.py").unlink()
    assert which_release(read_tree(tmp_path), expected) is None  # partial


@pytest.mark.slow
def test_readers_never_see_a_mixed_tree_across_200_swaps(tmp_path, source):
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    # A reader holds a tree for milliseconds; a 5 s grace keeps that safe and lets the run,
    # which can now finish in well under 30 s, outlive it so that pruning is exercised.
    sidecar = start_sidecar(
        source, target, tmp_path / "status.json", "--interval", "0.01", "--grace", "5", "--keep", "3"
    )
    watcher = TreeWatcher(target, releases.by_number)
    watcher.start()
    swaps = 0
    try:
        for number in range(1, 206):
            wait_live(target, releases.publish(number, numbered_tree(number)))
            swaps += 1
    finally:
        watcher.stop()
        output = stop_sidecar(sidecar)
        if swaps < 205:
            print(output[-3000:])
    distinct = len(set(watcher.seen))
    print(f"swaps={swaps} snapshots={len(watcher.seen)} distinct={distinct} mixed={watcher.bad_passes}")
    assert swaps >= 200
    assert watcher.bad_passes == 0
    assert len(watcher.seen) >= 400 and distinct >= 100
    assert len(os.listdir(target / ".s3sync" / "releases")) < 205  # old releases were pruned


@pytest.mark.slow
def test_kill_9_mid_sync_never_exposes_a_partial_tree(tmp_path, source, bucket):
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    rng = random.Random(1234)
    interrupted = 0
    for kill in range(50):
        number = kill + 1
        via_pack = kill % 2 == 0  # alternate: the pack, and single GETs (a request costs ~nothing)
        changed = 80 if via_pack else 5
        latest = releases.publish(number, numbered_tree(number, files=150, changed=changed))
        sidecar = start_sidecar(
            source,
            target,
            tmp_path / "status.json",
            "--interval",
            "0.05",
            "--request-cost",
            "1048576" if via_pack else "1",
            "--concurrency",
            "4",
        )
        if kill % 3:  # usually aim inside the sync: wait until staging appears
            wait_for(lambda goal=latest: staging_entries(target) or live_release(target) == goal)
            time.sleep(rng.uniform(0, 0.005))
        else:
            time.sleep(rng.uniform(0.3, 1.2))
        sidecar.send_signal(signal.SIGKILL)
        sidecar.wait(10)
        live = live_release(target)
        if live is not None:
            assert read_tree(target) == releases.by_number[releases.number_of[live]], f"kill {kill}"
        if live != latest or staging_entries(target):
            interrupted += 1
        restart = cli_process("sync", "--once", "--source", source, "--target", target)
        assert restart.returncode == 0, restart.stderr
        assert live_release(target) == latest
        assert read_tree(target) == releases.by_number[number]
        assert staging_entries(target) == []
    print(f"kills=50 interrupted_before_swap={interrupted}")
    assert interrupted >= 20  # the kills did land inside syncs, not only between them


@pytest.mark.slow
def test_four_sidecars_on_one_root(tmp_path, source):
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    sidecars = [
        start_sidecar(source, target, tmp_path / f"status{i}.json", "--interval", "0.05", "--grace", "5")
        for i in range(4)
    ]
    watcher = TreeWatcher(target, releases.by_number)
    watcher.start()
    rng = random.Random(99)
    try:
        for number in range(1, 51):
            tree = numbered_tree(number, files=40, changed=rng.choice([1, 40]))
            last = releases.publish(number, tree)
            time.sleep(rng.uniform(0, 0.15))
        wait_live(target, last)
    finally:
        watcher.stop()
        outputs = [stop_sidecar(sidecar) for sidecar in sidecars]
    events = [json.loads(line) for out in outputs for line in out.splitlines() if line.startswith("{")]
    swaps = sum(e.get("event") == "release live" for e in events)
    failures = [e["error"] for e in events if e.get("event") == "sync failed"]
    distinct = len(set(watcher.seen))
    print(f"swaps={swaps} passes={len(watcher.seen)} distinct={distinct} failures={failures}")
    assert watcher.bad_passes == 0 and watcher.regressions == 0
    assert [s.returncode for s in sidecars] == [0, 0, 0, 0]
    assert swaps >= 20 and distinct >= 10
    probe = tmp_path / "probe"
    probe.mkdir()
    for release in os.listdir(target / ".s3sync" / "releases"):  # every kept tree is intact
        os.symlink(target / ".s3sync" / "releases" / release, probe / "current")
        assert read_tree(probe) == releases.by_number[releases.number_of[release]]
        os.unlink(probe / "current")
    assert staging_entries(target) == []
    assert read_tree(target) == releases.by_number[50]
