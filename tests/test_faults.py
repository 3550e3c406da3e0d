"""Fault injection: the sidecar talks to S3 through a proxy that answers 500/503, stalls past
the timeout, cuts bodies short and flips bytes; and its target disk fills up mid-sync.

What must hold: no file with wrong content is ever live, the sidecar converges once the
faults stop, and its health line and EMF metrics report the failures meanwhile.
"""

import itertools
import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from s3sync import status
from tests.support.faultproxy import KINDS, FaultProxy
from tests.support.readers import TreeWatcher, numbered_tree, read_tree
from tests.support.releases import Releases, live_release, wait_live
from tests.support.trees import (
    cli_process,
    sidecar_errors,
    staging_entries,
    start_sidecar,
    stop_sidecar,
    wait_for,
)

SEED = 20261123


@pytest.fixture
def proxy(s3_server):
    proxy = FaultProxy(s3_server.endpoint, seed=SEED, stall=1.5)
    yield proxy
    proxy.close()


def via(proxy: FaultProxy) -> dict:
    return {"AWS_ENDPOINT_URL_S3": proxy.endpoint}


def log_records(out: str) -> tuple[list[dict], list[dict]]:
    """(log lines, EMF metric lines) of a sidecar's stdout."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" not in line], [line for line in lines if "_aws" in line]


def health(status_file: Path, max_age: float = 300) -> tuple[bool, str]:
    return status.judge(status_file, max_age)


def wait_health(status_file: Path, wanted, max_age: float = 300, timeout: float = 60) -> str:
    """The first health line for which `wanted(healthy, line)` holds."""

    def check() -> str | None:
        healthy, line = health(status_file, max_age)
        return line if wanted(healthy, line) else None

    return wait_for(check, timeout, step=0.05, what="the health line wanted")


def recovered(healthy: bool, line: str) -> bool:
    return healthy and "failed" not in line


def sync_once(source: str, target: Path, proxy: FaultProxy):
    return cli_process("sync", "--once", "--source", source, "--target", target, env=via(proxy))


def generations_live(target: Path) -> list[int]:
    state = json.loads((target / ".s3sync" / "state.json").read_text())
    return [record["generation"] for record in state["history"]]


def test_a_manifest_damaged_in_transit_is_never_believed(tmp_path, source, proxy):
    """A LATEST.json whose generation was altered on the way still parses; its checksum
    must give it away, or the sidecar would jump ahead and refuse every real release."""
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    releases.publish(1, numbered_tree(1))
    assert sync_once(source, target, proxy).returncode == 0
    second = releases.publish(2, numbered_tree(2))
    proxy.force("edit", "LATEST.json", edit=(b'"generation":2', b'"generation":9'))
    synced = sync_once(source, target, proxy)
    assert synced.returncode == 0, synced.stderr
    assert "Expected checksum" in synced.stdout  # botocore's FlexibleChecksumError, then a retry
    assert proxy.counts["edit"] == 1
    assert live_release(target) == second and generations_live(target) == [1, 2]
    assert read_tree(target) == releases.by_number[2]


def test_damaged_packs_and_objects_are_fetched_again(tmp_path, source, proxy):
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    first = releases.publish(1, numbered_tree(1, files=60, changed=0))
    proxy.force("flip", ".tar.gz")  # the cold start's pack: given up for single GETs
    synced = sync_once(source, target, proxy)
    assert synced.returncode == 0, synced.stderr
    assert live_release(target) == first and read_tree(target) == releases.by_number[1]
    given_up = [r for r in log_records(synced.stdout)[0] if r["event"].startswith("release pack given up")]
    assert len(given_up) == 1 and "damaged" in given_up[0]["detail"]

    second = releases.publish(2, numbered_tree(2, files=60, changed=2))  # three single GETs
    proxy.force("flip", "/objects/", times=2)  # each damaged once, then fetched again
    synced = sync_once(source, target, proxy)
    assert synced.returncode == 0, synced.stderr
    assert live_release(target) == second and read_tree(target) == releases.by_number[2]
    assert proxy.counts["flip"] == 3


def test_health_and_metrics_report_an_unreachable_s3_then_recover(tmp_path, source, proxy):
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    status_file = tmp_path / "status.json"
    first = releases.publish(1, numbered_tree(1))
    sidecar = start_sidecar(
        source, target, status_file, "--interval", "0.2", "--s3-retries", "1", metrics=True, env=via(proxy)
    )
    try:
        wait_live(target, first)
        proxy.force("503", "LATEST.json", times=10**6)  # every poll answered SlowDown
        failing = wait_health(status_file, lambda healthy, line: "polls failed" in line)
        assert failing.startswith(f"healthy: release {first}") and "SlowDown" in failing
        line = wait_health(status_file, lambda healthy, line: not healthy, max_age=1.5)
        assert "last successful sync" in line and "SlowDown" in line
        assert cli_process("health", "--status-file", status_file, "--max-age", "1.5").returncode == 1
        assert live_release(target) == first  # the last good release stays live
        proxy.forced.clear()
        second = releases.publish(2, numbered_tree(2))
        wait_live(target, second, timeout=60)
        wait_health(status_file, recovered)
    finally:
        out = stop_sidecar(sidecar)
    assert sidecar.returncode == 0, sidecar_errors(sidecar)
    logs, metrics = log_records(out)
    failures = [r for r in logs if r["event"] == "sync failed"]
    reported = [m["SyncFailures"] for m in metrics if "SyncFailures" in m]
    assert len(failures) >= 3 and sum(reported) == len(failures)
    assert reported[-1] == 0  # the swap after recovery reports none


@pytest.mark.slow
def test_twenty_percent_faults_over_a_hundred_publishes(tmp_path, source, proxy):
    rng = random.Random(SEED)
    releases = Releases(source, tmp_path / "trees")
    target = tmp_path / "root"
    status_file = tmp_path / "status.json"
    releases.publish(0, numbered_tree(0, files=40))
    sidecar = start_sidecar(
        source,
        target,
        status_file,
        *("--interval", "0.1", "--s3-timeout", "0.5", "--s3-retries", "3", "--mode", "manifest"),
        metrics=True,
        env=via(proxy),
    )
    watcher = TreeWatcher(target, releases.by_number)
    watcher.start()
    health_lines: list[str] = []
    rollbacks = 0
    try:
        proxy.set_rate(0.2)
        for number in range(1, 101):
            if number % 25 == 0:  # now and then, LATEST goes back to an earlier release
                earlier = [r for r, n in releases.number_of.items() if n == number - 5]
                releases.publisher.rollback(earlier[0])
                rollbacks += 1
            else:  # usually a few files; every tenth release rewrites them all (the pack's case)
                changed = 40 if number % 10 == 0 else rng.randint(1, 4)
                releases.publish(number, numbered_tree(number, files=40, changed=changed))
            health_lines.append(health(status_file)[1])
            time.sleep(rng.uniform(0, 0.3))
        faulty = dict(proxy.counts)
        proxy.set_rate(0.0)
        stopped = time.monotonic()
        final = releases.publish(101, numbered_tree(101, files=40))
        wait_live(target, final, timeout=120)
        converged = time.monotonic() - stopped
        wait_health(status_file, recovered)
        proxy.set_rate(0.2)  # and an init container's cold start under the same faults
        cold = sync_once(source, tmp_path / "cold", proxy)
    finally:
        watcher.stop()
        out = stop_sidecar(sidecar)
    assert sidecar.returncode == 0, sidecar_errors(sidecar)
    logs, metrics = log_records(out)
    failures = [r for r in logs if r["event"] == "sync failed"]
    refusals = [r for r in logs if r["event"] == "release refused"]  # bytes still wrong after every retry
    swaps = [r for r in logs if r["event"] == "release live"]
    packs_given_up = [r for r in logs if r["event"].startswith("release pack given up")]
    requests = sum(faulty.values())
    faults = requests - faulty.get("ok", 0)
    print(
        f"publishes=100 (rollbacks {rollbacks}) requests={requests} faults={faults} "
        f"({100 * faults / requests:.1f}%: {', '.join(f'{k} {faulty.get(k, 0)}' for k in KINDS)}) "
        f"sync_failures={len(failures)} refusals={len(refusals)} swaps={len(swaps)} "
        f"packs_given_up={len(packs_given_up)} "
        f"reads={len(watcher.seen)} wrong_reads={watcher.bad_passes} converged_in={converged:.1f}s"
    )
    assert watcher.bad_passes == 0 and len(watcher.seen) > 100  # no wrong byte was ever live
    assert 0.15 < faults / requests < 0.25 and all(faulty.get(kind) for kind in KINDS)
    assert read_tree(target) == releases.by_number[101] and staging_entries(target) == []
    assert all(a < b for a, b in itertools.pairwise(generations_live(target)))
    assert len(swaps) >= 20  # it kept making progress under faults
    failed_polls = len(failures) + len(refusals)
    assert failed_polls and sum(m["SyncFailures"] for m in metrics if "SyncFailures" in m) == failed_polls
    assert any("polls failed" in line or "refused" in line for line in health_lines)
    assert cold.returncode == 0, cold.stderr
    assert read_tree(tmp_path / "cold") == releases.by_number[101]


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a filesystem that can really fill up."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full test mounts a tmpfs and must run as root (as CI does)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Write a ballast file until the disk is full, then free `leave` bytes of it."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    os.truncate(ballast, max(0, ballast.stat().st_size - leave))
    return ballast


def big_tree(number: int) -> dict[str, bytes]:
    """20 files of 40 KB that all change with every release."""
    return {f"f{i:02d}.py": f"release {number} file {i}\n".ljust(40_000, "#").encode() for i in range(20)}


@pytest.mark.slow
def test_a_full_target_disk_keeps_the_old_release_live_and_recovers(tmp_path, source, small_disk):
    releases = Releases(source, tmp_path / "trees")
    target = small_disk / "root"
    status_file = tmp_path / "status.json"
    first = releases.publish(1, big_tree(1))
    sidecar = start_sidecar(source, target, status_file, "--interval", "0.2", metrics=True)
    try:
        wait_live(target, first)
        ballast = fill(small_disk, leave=200_000)  # room for a quarter of the next release
        second = releases.publish(2, big_tree(2))
        failing = wait_health(status_file, lambda healthy, line: "No space left on device" in line)
        assert f"cannot write under {target}: [Errno 28] No space left on device" in failing
        assert live_release(target) == first and read_tree(target) == releases.by_number[1]
        wait_for(lambda: staging_entries(target) == [], what="the failed staging to be cleaned up")
        ballast.unlink()
        wait_live(target, second, timeout=60)
        assert read_tree(target) == releases.by_number[2]
        wait_health(status_file, recovered)
    finally:
        out = stop_sidecar(sidecar)
    assert sidecar.returncode == 0, sidecar_errors(sidecar)
    logs, metrics = log_records(out)
    full = [r for r in logs if r["event"] == "sync failed" and "No space left" in r["error"]]
    assert full and sum(m["SyncFailures"] for m in metrics if "SyncFailures" in m) >= len(full)
    assert not list((target / ".s3sync").rglob("*.tmp"))  # no half-written state or manifest
