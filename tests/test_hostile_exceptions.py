"""Hostile releases, class 2: exceptions that are not the sidecar's own.

Whatever a remote release contains, `sync --once` exits non-zero with one line, and
`s3sync run` stays up on the last good release, logs one structured line per failed poll,
backs off, and its health says why.
"""

import json
import subprocess
import sys
import time

import pytest

from s3sync import status
from s3sync.runner import Loop, LoopSettings
from tests.support import hostile
from tests.support.trees import (
    cli,
    live_snapshot,
    make_syncer,
    measured_run,
    start_sidecar,
    stop_sidecar,
    wait_for,
    write_tree,
)

HOSTILE_LATEST = {
    "deeply nested JSON": lambda bucket: hostile.deeply_nested_json(),
    "nested file entry": lambda bucket: hostile.nested_files_entry(),
    "lone surrogate in a path": lambda bucket: hostile.manifest_with_a_lone_surrogate(),
    "path deeper than recursion": hostile.path_deeper_than_recursion,
    "huge generation number": lambda bucket: hostile.huge_generation_number(),
}


@pytest.mark.parametrize("name", HOSTILE_LATEST)
def test_sync_once_says_one_line_whatever_the_release_holds(live_root, name):
    live_root.bucket.put_latest(HOSTILE_LATEST[name](live_root.bucket))
    code, _out, err, _seconds, _peak = measured_run(
        "sync", "--once", "--source", live_root.source, "--target", live_root.target
    )
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("s3sync: sync failed"), err[-3000:]
    live_root.assert_untouched()


def health(status_file) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "s3sync", "health", "--status-file", str(status_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode, done.stdout.strip()


def records(status_file) -> list[dict]:
    with open(f"{status_file}.log") as log:
        return [json.loads(line) for line in log if line.startswith("{")]


def test_run_stays_up_on_the_last_good_release_and_health_says_why(live_root, tmp_path):
    """(tests/test_hostile_resources.py runs every hostile release through one `run` process.)"""
    status_file = tmp_path / "status.json"
    sidecar = start_sidecar(live_root.source, live_root.target, status_file, "--interval", "0.2")
    try:
        wait_for(status_file.exists, 30, 0.05, "the first status")
        live_root.bucket.put_latest(hostile.deeply_nested_json())
        refused = wait_for(
            lambda: [r for r in records(status_file) if r["level"] == "error"], 30, 0.1, "a refusal logged"
        )
        time.sleep(1.5)  # several polls' worth
        assert sidecar.poll() is None, "the sidecar exited"
        assert all(set(r) >= {"event", "error"} and "\n" not in r["error"] for r in refused)
        code, line = health(status_file)
        assert code == 0 and "refused" in line, line
        live_root.assert_untouched()
        files = {"dag.py": "fixed = True\n"}
        assert cli("publish", write_tree(tmp_path / "fixed", files), live_root.source) == 0
        wait_for(
            lambda: live_snapshot(live_root.target) == {"dag.py": hostile.sha(b"fixed = True\n")}, 30, 0.1
        )
        assert sidecar.poll() is None
    finally:
        stop_sidecar(sidecar)


def test_the_loop_survives_an_error_it_does_not_know(live_root, tmp_path, monkeypatch):
    syncer = make_syncer(live_root.source, live_root.target)
    loop = Loop(
        syncer,
        LoopSettings(interval=1, status_file=tmp_path / "status.json", emit_metrics=False),
        "s",
        syncer.log,
    )

    def explode(*_args, **_kwargs):
        raise ZeroDivisionError("a bug somewhere below")

    monkeypatch.setattr("s3sync.runner.apply", explode)
    live_root.bucket.put_latest(live_root.bucket.manifest([hostile.entry_for("a/b/c.py", b"x")]))
    assert loop.once_in_loop(0) == 0  # refused: judged again after a backoff, polls go on
    written = status.read(tmp_path / "status.json")
    assert "ZeroDivisionError: a bug somewhere below" in written.latest_refused
    assert written.release == live_root.release
    live_root.assert_untouched()


def test_publish_replaces_a_latest_it_cannot_read_and_sidecars_follow(live_root, tmp_path, capsys):
    """The way out of a hostile LATEST.json is the usual publish, even after rollbacks raised
    LATEST's generation past every release manifest."""
    source, target = live_root.source, live_root.target
    assert cli("publish", write_tree(tmp_path / "b", {"dag.py": "b = 1\n"}), source) == 0
    assert cli("rollback", live_root.release, "--source", source) == 0
    assert cli("sync", "--once", "--source", source, "--target", target) == 0
    live_root.bucket.put_latest(hostile.deeply_nested_json())
    capsys.readouterr()
    assert cli("publish", write_tree(tmp_path / "c", {"dag.py": "c = 1\n"}), source) == 0
    assert "LATEST.json could not be read (" in capsys.readouterr().err
    assert cli("sync", "--once", "--source", source, "--target", target) == 0
    assert live_snapshot(target) == {"dag.py": hostile.sha(b"c = 1\n")}
