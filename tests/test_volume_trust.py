"""Hostile volume, class 4: whoever can write the shared volume cannot make the sidecar write
outside ROOT, follow a symlink out of it, or report a tree live that is not one of its own
verified releases. Every test runs beside a sentinel folder that must not change."""

import os
import shutil

import pytest

from tests.support import hostile
from tests.support.trees import cli, cli_said, live_snapshot, measured_run, write_tree

META = ".s3sync"


@pytest.fixture
def sync_once(live_root, capsys):
    """`s3sync sync --once` on the fenced ROOT: (exit code, all it said)."""

    def run(*extra: str) -> tuple[int, str]:
        source, target = live_root.source, live_root.target
        return cli_said(
            capsys, "sync", "--once", "--source", source, "--target", target, "--timeout", "3", *extra
        )

    return run


def publish(live_root, tmp_path, files: dict[str, str]) -> str:
    assert (
        cli("publish", write_tree(tmp_path / f"src{len(os.listdir(tmp_path))}", files), live_root.source) == 0
    )
    return live_release_id(live_root)


def live_release_id(live_root) -> str:
    import json

    return json.loads(live_root.bucket.get_latest())["release"]


def assert_current_is_ours(target, release: str) -> None:
    assert os.readlink(target / "current") == f"{META}/releases/{release}"
    assert not os.path.islink(target / META / "releases" / release)


def replace_with_link(path, to) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    os.symlink(to, path)


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_current_pointing_outside_is_repaired(live_root, fence, where, sync_once):
    planted = fence.plant(f"{live_root.release}/dag.py", b"planted = True\n").parent
    replace_with_link(
        live_root.target / "current", planted if where == "absolute" else f"../outside/{live_root.release}"
    )
    code, said = sync_once()
    assert code == 0, said
    assert_current_is_ours(live_root.target, live_root.release)
    assert live_snapshot(live_root.target) == live_root.tree


def test_sync_once_never_exits_0_with_current_outside_root(live_root, fence, s3_server, sync_once):
    planted = fence.plant(f"{live_root.release}/dag.py", b"planted = True\n").parent
    replace_with_link(live_root.target / "current", planted)
    shutil.rmtree(live_root.target / META / "releases" / live_root.release)  # nothing kept to repair it with
    s3_server.fault(method="GET", contains="/dags/", status=500, times=10_000)
    try:
        code, said = sync_once("--s3-retries", "1")
    finally:
        s3_server.reset()
    assert code != 0, said
    current = live_root.target / "current"
    assert not current.is_symlink() or not os.path.realpath(current).startswith(str(fence.outside))


@pytest.mark.parametrize("folder", ["staging", "releases", "manifests", "trash", ""])
def test_symlinked_state_folders_are_never_written_through(live_root, fence, tmp_path, folder, sync_once):
    decoy = fence.plant(f"decoy-{folder or 'meta'}")
    path = live_root.target / META / folder if folder else live_root.target / META
    if folder == "releases" or not folder:
        shutil.copytree(path, decoy, dirs_exist_ok=True, symlinks=True)
        fence.baseline = fence.snapshot()
    replace_with_link(path, decoy)
    release = publish(live_root, tmp_path, {"dag.py": "after = True\n"})
    code, said = sync_once("--keep", "1", "--grace", "0")
    assert code == 0, said
    assert_current_is_ours(live_root.target, release)
    assert (live_root.target / "current" / "dag.py").read_text() == "after = True\n"


@pytest.mark.parametrize("name", ["lock", "state.json"])
def test_symlinked_state_files_are_never_followed(live_root, fence, tmp_path, name, sync_once):
    decoy = fence.plant(
        f"decoy-{name}", b'{"source": "", "release": "", "generation": 999999, "history": []}'
    )
    replace_with_link(live_root.target / META / name, decoy)
    release = publish(live_root, tmp_path, {"dag.py": "after = True\n"})
    code, said = sync_once()
    assert code == 0, said
    assert_current_is_ours(live_root.target, release)


def test_a_kept_release_replaced_by_a_symlink_is_not_trusted(live_root, fence, tmp_path, sync_once):
    first = live_root.release
    publish(live_root, tmp_path, {"dag.py": "second = True\n"})
    assert sync_once()[0] == 0
    planted = fence.plant(f"copy/{first}/dag.py", b"planted = True\n").parent
    replace_with_link(live_root.target / META / "releases" / first, planted)
    code, said = sync_once("--release", first)
    assert code == 0, said
    assert_current_is_ours(live_root.target, first)
    assert live_snapshot(live_root.target) == live_root.tree


def test_a_planted_release_folder_is_verified_before_it_goes_live(live_root, tmp_path, sync_once):
    files = {"dag.py": "real = True\n"}
    folder = tmp_path / "next"
    write_tree(folder, files)
    code, out, _err, _s, _p = measured_run("publish", "--dry-run", folder, live_root.source)
    release = out.split("dry run: release ")[1].split()[0]
    planted = live_root.target / META / "releases" / release
    write_tree(planted, {"dag.py": "planted = True\n", "extra.py": "more = True\n"})
    assert cli("publish", folder, live_root.source) == 0
    code, said = sync_once()
    assert code == 0, said
    assert_current_is_ours(live_root.target, release)
    assert live_snapshot(live_root.target) == {"dag.py": hostile.sha(b"real = True\n")}


def test_symlinks_left_in_staging_and_trash_are_removed_not_followed(live_root, fence, tmp_path, sync_once):
    for folder in ("staging", "trash"):
        os.symlink(fence.outside, live_root.target / META / folder / "someone-else-1234")
    release = publish(live_root, tmp_path, {"dag.py": "after = True\n"})
    code, said = sync_once()
    assert code == 0, said
    assert_current_is_ours(live_root.target, release)
    assert os.listdir(live_root.target / META / "trash") == []
    assert [n for n in os.listdir(live_root.target / META / "staging") if "someone" in n] == []
