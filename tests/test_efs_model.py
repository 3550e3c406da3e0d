"""s3sync on a model of EFS (tests/support/latencyfs: every metadata change waits 2.7 ms, every
uncached lookup 0.5 ms, the kernel serialises the changes to one folder). What a release costs
there, N sidecars on one tree, and old releases deleted beside the polls. The benchmark
(`benchmarks/sync --fs efs`) measures the 10,000-file tree against the other tools."""

import json
import time

import pytest

from tests.support.latencyfs import LatencyMount
from tests.support.trees import (
    cli,
    live_snapshot,
    start_sidecar,
    stop_sidecar,
    tree_digests,
    wait_for,
    write_tree,
)

pytestmark = pytest.mark.slow

FOLDERS, PER_FOLDER = 20, 100
CHANGE_MS = 2.7


def tree(version: int, changed: range = range(0)) -> dict[str, str]:
    """FOLDERS x PER_FOLDER files; the files numbered in `changed` carry `version`."""
    return {
        f"group{i % FOLDERS:02d}/dag_{i:05d}.py": f"# dag {i}, version {version if i in changed else 0}\n"
        for i in range(FOLDERS * PER_FOLDER)
    }


@pytest.fixture
def efs(tmp_path):
    with LatencyMount(tmp_path / "backing", tmp_path / "efs") as mount:
        yield mount


def shows(root, files: dict[str, str]) -> bool:
    """`root` has `files` live (False while a swap with --grace 0 pulls a tree from under the look)."""
    try:
        return live_snapshot(root) == tree_digests(files)
    except FileNotFoundError:
        return False


def publish(source: str, folder, files: dict[str, str]) -> None:
    write_tree(folder, files)
    assert cli("publish", folder, source) == 0


def test_a_one_file_release_links_the_unchanged_files_folders_side_by_side(efs, tmp_path, source):
    root = efs.mount / "root"
    publish(source, tmp_path / "v0", tree(0))
    assert cli("sync", "--once", "--source", source, "--target", root) == 0
    publish(source, tmp_path / "v1", tree(1, changed=range(1)))
    before, started = efs.counts(), time.monotonic()
    assert cli("sync", "--once", "--source", source, "--target", root) == 0
    seconds, changes = time.monotonic() - started, efs.changes(before)
    assert live_snapshot(root) == tree_digests(tree(1, changed=range(1)))
    counts = {kind: efs.counts()[kind] - before[kind] for kind in before}
    print(f"\none-file release on the model: {changes} changes in {seconds:.2f} s: {counts}")
    assert changes <= FOLDERS * PER_FOLDER + FOLDERS + 40  # a link a file, a folder each, the swap
    assert seconds < changes * CHANGE_MS / 1000 / 4  # one after another they would take this long


def test_five_sidecars_on_one_tree_make_each_release_once(efs, tmp_path, source):
    root = efs.mount / "root"
    publish(source, tmp_path / "v0", tree(0))
    sidecars = [
        start_sidecar(source, root, tmp_path / f"status{n}.json", "--interval", "0.2") for n in range(5)
    ]
    try:
        wait_for(lambda: live_snapshot(root) == tree_digests(tree(0)), 60, 0.1, "the first release")
        wait_for(lambda: all((tmp_path / f"status{n}.json").exists() for n in range(5)), 30, 0.1)
        time.sleep(1)  # every sidecar has seen it live
        before = efs.counts()
        publish(source, tmp_path / "v1", tree(1, changed=range(FOLDERS * PER_FOLDER)))  # every file new
        wait_for(lambda: live_snapshot(root) == tree_digests(tree(1, range(FOLDERS * PER_FOLDER))), 60, 0.1)
        time.sleep(2)  # and every sidecar has polled since
        made = efs.counts()
    finally:
        for sidecar in sidecars:
            stop_sidecar(sidecar)
    files_made = sum(made[kind] - before[kind] for kind in ("create", "link"))
    print(f"\nfive sidecars, one 2,000-file release: {files_made} files made")
    assert files_made <= FOLDERS * PER_FOLDER * 1.05  # made once, not once per sidecar


def test_old_releases_are_deleted_beside_the_polls(efs, tmp_path, source):
    """With --keep 1 --grace 0 each swap sends the release before to the trash: 2,000 unlinks,
    5 s one after another on the model. The next release must not wait for them."""
    root = efs.mount / "root"
    status_file = tmp_path / "status.json"
    publish(source, tmp_path / "v0", tree(0))
    sidecar = start_sidecar(source, root, status_file, "--interval", "0.2", "--keep", "1", "--grace", "0")
    try:
        wait_for(lambda: shows(root, tree(0)), 60, 0.1, "the first release")
        publish(source, tmp_path / "v1", tree(1, changed=range(1)))
        wait_for(lambda: shows(root, tree(1, range(1))), 60, 0.05)
        publish(source, tmp_path / "v2", tree(2, changed=range(2)))  # while v0 is being deleted
        started = time.monotonic()
        wait_for(lambda: shows(root, tree(2, range(2))), 60, 0.05)
        seconds = time.monotonic() - started
        wait_for(lambda: not list((root / ".s3sync" / "trash").iterdir()), 60, 0.1, "the trash swept")
    finally:
        out = stop_sidecar(sidecar)
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    print(f"\nthe release after a prune went live {seconds:.2f} s after its publish")
    assert events.count("trash swept") >= 1
    assert len(list((root / ".s3sync" / "releases").iterdir())) == 1
    assert seconds < FOLDERS * PER_FOLDER * CHANGE_MS / 1000 / 2
