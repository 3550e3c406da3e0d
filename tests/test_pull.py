"""Pulling against a real S3 server: request counts, diffs, hard links, pins, listing mode."""

import json
import os
import signal
import time

from s3sync import status
from s3sync.client import ClientSettings, make_client
from s3sync.location import S3Location
from s3sync.publish import Publisher
from tests.support.trees import (
    cli,
    cli_process,
    live_snapshot,
    make_syncer,
    sidecar_errors,
    snapshot,
    staging_entries,
    start_sidecar,
    stop_sidecar,
    tree_digests,
    wait_for,
    write_tree,
)


def publish(source: str, folder) -> str:
    return Publisher(make_client(ClientSettings()), S3Location.parse(source)).publish(folder).release


def many_files(count: int) -> dict[str, str]:
    return {f"dags/group{i % 10}/dag_{i:04d}.py": f"# dag {i}\nDAG_ID = 'dag_{i}'\n" for i in range(count)}


def test_thousand_files_request_counts(tmp_path, source, s3_server):
    files = many_files(1000)
    src = write_tree(tmp_path / "src", files)
    publish(source, src)
    target = tmp_path / "root"
    syncer = make_syncer(source, target)

    s3_server.reset()
    outcome = syncer.poll()
    assert outcome.action == "swapped" and outcome.used_pack
    assert live_snapshot(target) == snapshot(src) == tree_digests(files)
    cold = s3_server.requests()
    assert len(cold) == 2, cold  # LATEST.json and the pack

    s3_server.reset()
    assert syncer.poll() is None
    idle = s3_server.requests()
    assert len(idle) == 1 and idle[0][0] == "GET" and idle[0][1].endswith("/LATEST.json")
    assert idle[0][3] == 304

    (src / "dags/group3/dag_0003.py").write_text("# changed\n")
    publish(source, src)
    s3_server.reset()
    outcome = syncer.poll()
    changed = s3_server.requests()
    assert outcome.action == "swapped" and outcome.files_fetched == 1 and outcome.files_linked == 999
    print(f"requests: cold={len(cold)} idle={len(idle)} one_file_changed={len(changed)}")
    assert len(changed) <= 3, changed
    assert live_snapshot(target) == snapshot(src)


def test_unchanged_files_are_hard_links_into_the_previous_release(tmp_path, source):
    src = write_tree(tmp_path / "src", {"a.py": "a", "b.py": "b"})
    first = publish(source, src)
    target = tmp_path / "root"
    syncer = make_syncer(source, target)
    syncer.poll()
    (src / "b.py").write_text("b2")
    second = publish(source, src)
    syncer.poll()
    releases = target / ".s3sync" / "releases"
    assert (releases / first / "a.py").stat().st_ino == (releases / second / "a.py").stat().st_ino
    assert (releases / first / "b.py").stat().st_ino != (releases / second / "b.py").stat().st_ino
    assert os.readlink(target / "current") == f".s3sync/releases/{second}"
    assert not os.access(target / "current" / "a.py", os.W_OK) or os.geteuid() == 0
    assert oct((target / "current" / "a.py").stat().st_mode & 0o777) == "0o444"


def test_run_loop_idle_polls_are_single_conditional_gets(tmp_path, source, s3_server):
    publish(source, write_tree(tmp_path / "src", many_files(50)))
    target = tmp_path / "root"
    status_file = tmp_path / "status.json"
    sidecar = start_sidecar(source, target, status_file, "--interval", "0.2", metrics=True)
    try:
        wait_for(lambda: (target / "current").exists())
        s3_server.reset()
        time.sleep(2.0)
        idle = s3_server.requests()
        assert len(idle) >= 5
        assert all(r[0] == "GET" and r[1].endswith("/LATEST.json") and r[3] == 304 for r in idle), idle
        assert cli("health", "--status-file", status_file) == 0
    finally:
        out = stop_sidecar(sidecar)
    assert sidecar.returncode == 0, sidecar_errors(sidecar)
    lines = [json.loads(line) for line in out.splitlines()]
    assert any(line.get("event") == "release live" for line in lines)
    emf = [line for line in lines if "_aws" in line]
    assert any("SyncDuration" in line and "FilesChanged" in line for line in emf)
    assert any("ReleaseAge" in line for line in emf)


def test_sync_once_exit_codes(tmp_path, source, bucket):
    target = tmp_path / "root"
    nothing = cli_process("sync", "--once", "--source", source, "--target", target, "--timeout", "1")
    assert nothing.returncode == 1
    assert nothing.stderr.strip().splitlines()[-1].startswith("s3sync: sync failed after")
    assert "no release at" in nothing.stderr

    usage = cli_process("sync", "--once", "--source", source)
    assert usage.returncode == 2 and "--target is required" in usage.stderr
    bad_url = cli_process("sync", "--once", "--source", "http://x", "--target", target)
    assert bad_url.returncode == 2 and "not an S3 URL" in bad_url.stderr
    bad_flag = cli_process(
        "sync", "--once", "--source", source, "--target", target, env={"S3SYNC_INTERVAL": "-1"}
    )
    assert bad_flag.returncode == 2 and "must be > 0" in bad_flag.stderr

    release = publish(source, write_tree(tmp_path / "src", {"a.py": "a"}))
    ok = cli_process("sync", "--once", "--source", source, "--target", target)
    assert ok.returncode == 0, ok.stderr
    assert f"release {release} is live" in ok.stdout
    assert staging_entries(target) == []


def test_pin_and_rollback(tmp_path, source, s3_server):
    src = write_tree(tmp_path / "src", {"a.py": "v1"})
    v1 = publish(source, src)
    (src / "a.py").write_text("v2")
    v2 = publish(source, src)
    target = tmp_path / "root"
    assert cli("sync", "--once", "--source", source, "--target", target, "--release", v1) == 0
    assert (target / "current" / "a.py").read_text() == "v1"
    s3_server.reset()
    assert cli("sync", "--once", "--source", source, "--target", target, "--release", v1) == 0
    assert s3_server.requests() == []  # a live pin needs no request: releases are immutable

    assert cli("sync", "--once", "--source", source, "--target", target) == 0
    assert (target / "current" / "a.py").read_text() == "v2"
    assert cli("rollback", v1, "--source", source) == 0
    s3_server.reset()
    assert cli("sync", "--once", "--source", source, "--target", target) == 0
    assert (target / "current" / "a.py").read_text() == "v1"
    assert os.readlink(target / "current").endswith(v1)
    assert [r[0] for r in s3_server.requests()] == ["GET"]  # v1 was still on disk: just a swap
    assert v2 != v1


def test_current_never_moves_backwards(tmp_path, source):
    src = write_tree(tmp_path / "src", {"a.py": "v1"})
    publish(source, src)
    target = tmp_path / "root"
    old_view = make_syncer(source, target)
    stale = old_view.remote.latest()  # a slow sidecar read generation 1 ...
    (src / "a.py").write_text("v2")
    publish(source, src)
    assert make_syncer(source, target).poll().generation == 2  # ... another applied generation 2
    from s3sync.pull import apply

    outcome = apply(stale, old_view.remote, old_view.layout, old_view.settings)
    assert outcome.action == "older"
    assert (target / "current" / "a.py").read_text() == "v2"


def test_a_prefix_emptied_and_published_again_is_followed_when_any_lineage_is_adopted(
    tmp_path, s3, bucket, source
):
    """A new history of LATEST.json (new lineage) restarts at generation 1 and goes live with
    --adopt-lineage any; e.g. a local S3 that forgot everything while the DAG volume kept
    generation 3 (compose runs its sidecar so). Without it, see test_rollback_rule.py."""
    src = write_tree(tmp_path / "src", {"a.py": "v1"})
    target = tmp_path / "root"
    syncer = make_syncer(source, target, adopt_lineage="any")
    for version in ("v1", "v2", "v3"):
        (src / "a.py").write_text(version)
        publish(source, src)
    assert syncer.poll().generation == 3
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    (src / "a.py").write_text("v4")
    publish(source, src)
    outcome = syncer.poll()
    assert (outcome.action, outcome.generation) == ("swapped", 1)
    assert (target / "current" / "a.py").read_text() == "v4"


def test_listing_mode_over_plain_uploads(tmp_path, s3, bucket, source, s3_server):
    plain = {"dag_a.py": "A = 1\n", "sub/dag_b.py": "B = 2\n", "sub/data.sql": "select 1;\n"}
    for rel, content in plain.items():
        s3.put_object(Bucket=bucket, Key=f"dags/{rel}", Body=content.encode())
    s3.put_object(Bucket=bucket, Key="dags/emptydir/", Body=b"")  # console-made folder marker
    target = tmp_path / "root"
    syncer = make_syncer(source, target)
    assert syncer.poll().action == "swapped"
    assert live_snapshot(target) == tree_digests(plain)

    s3.put_object(Bucket=bucket, Key="dags/dag_a.py", Body=b"A = 9\n")  # same size, new bytes
    s3.delete_object(Bucket=bucket, Key="dags/sub/data.sql")
    s3_server.reset()
    outcome = syncer.poll()
    assert outcome.action == "swapped" and outcome.files_fetched == 1 and outcome.files_linked == 1
    assert live_snapshot(target) == tree_digests({"dag_a.py": "A = 9\n", "sub/dag_b.py": "B = 2\n"})
    kinds = [(r[0], r[1].rsplit("/", 1)[-1]) for r in s3_server.requests()]
    assert kinds == [("GET", "LATEST.json"), ("GET", bucket), ("GET", "dag_a.py")], kinds

    s3_server.reset()
    assert syncer.poll().action == "unchanged"
    assert len(s3_server.requests()) == 2  # LATEST.json (404) and one LIST page


def test_health(tmp_path):
    path = tmp_path / "status.json"
    ok, line = status.judge(path, 300)
    assert not ok and "no status file" in line
    now = time.time()
    fresh = status.Status(
        pid=1,
        source="s3://b/p",
        interval=10,
        heartbeat_at=now,
        last_success_at=now - 5,
        release="r",
        generation=3,
    )
    status.write(path, fresh)
    assert cli("health", "--status-file", path) == 0
    assert status.judge(path, 300, now=now)[1] == "healthy: release r generation 3, synced 5s ago"
    fresh.consecutive_failures, fresh.last_error = 2, "GET s3://b/p/LATEST.json: SlowDown"
    status.write(path, fresh)
    assert status.judge(path, 300, now=now) == (
        True,
        "healthy: release r generation 3, synced 5s ago; "
        "the last 2 polls failed: GET s3://b/p/LATEST.json: SlowDown",
    )
    fresh.consecutive_failures, fresh.last_error = 0, None
    ok, line = status.judge(path, 300, now=now + 400)
    assert not ok and "stalled" in line
    fresh.heartbeat_at = now + 400
    status.write(path, fresh)
    ok, line = status.judge(path, 300, now=now + 400)
    assert not ok and "last successful sync 405s ago" in line
    status.write(
        path,
        status.Status(
            pid=1,
            source="s",
            interval=10,
            heartbeat_at=now,
            last_error="GET s3://b/p/LATEST.json: AccessDenied",
        ),
    )
    ok, line = status.judge(path, 300, now=now)
    assert not ok and "no successful sync yet; last error: GET" in line
    path.write_text("{garbage")
    assert cli("health", "--status-file", path) == 1


def test_orphan_staging_is_cleaned_on_start(tmp_path, source):
    publish(source, write_tree(tmp_path / "src", {"a.py": "a"}))
    target = tmp_path / "root"
    staging = target / ".s3sync" / "staging"
    staging.mkdir(parents=True)
    (staging / "deadhost-1-abcd").mkdir()
    (staging / "deadhost-1-abcd" / "half.py").write_text("half")
    (staging / "deadhost-1-abcd.lock").write_text("")
    (staging / "nolock-2-ef01").mkdir()
    assert cli("sync", "--once", "--source", source, "--target", target) == 0
    assert staging_entries(target) == []


def test_auto_mode_never_serves_a_half_published_prefix(tmp_path, s3, bucket, source, capsys):
    src = write_tree(tmp_path / "src", {"a.py": "a"})
    publish(source, src)
    s3.delete_object(Bucket=bucket, Key="dags/LATEST.json")  # as if the first publish were cut short
    target = tmp_path / "root"
    assert cli("sync", "--once", "--source", source, "--target", target, "--timeout", "1") == 1
    assert "holds s3sync objects but no LATEST.json" in capsys.readouterr().err
    assert not (target / "current").exists()


def test_waiting_for_a_first_release_is_healthy_and_not_backed_off(tmp_path, source):
    target, status_file = tmp_path / "root", tmp_path / "status.json"
    sidecar = start_sidecar(source, target, status_file, "--interval", "0.2")
    try:
        wait_for(status_file.exists)
        time.sleep(3)  # 15 empty polls: a failure backoff would now wait 3 s or more
        ok, line = status.judge(status_file, 300)
        assert ok and "no release published yet" in line, line
        release = publish(source, write_tree(tmp_path / "src", {"a.py": "a"}))
        published = time.monotonic()
        wait_for(lambda: (target / "current").exists(), timeout=10)
        assert time.monotonic() - published < 2.5  # a failure backoff would take 3 s or more
        assert os.readlink(target / "current").endswith(release)
    finally:
        stop_sidecar(sidecar)


def test_a_frozen_sidecar_turns_unhealthy_once_its_stall_bound_passes(tmp_path, source):
    publish(source, write_tree(tmp_path / "src", {"a.py": "a"}))
    status_file = tmp_path / "status.json"
    sidecar = start_sidecar(source, tmp_path / "root", status_file, "--interval", "1")
    try:
        wait_for(lambda: status_file.exists() and status.judge(status_file, 300)[0])
        sidecar.send_signal(signal.SIGSTOP)
        frozen_at = time.time()
        time.sleep(2.5)
        beat = status.read(status_file).heartbeat_at
        assert beat <= frozen_at  # a frozen loop writes nothing
        bound = status.stall_bound(1)  # 60 s: three polls, never under a minute
        assert status.judge(status_file, 300, now=frozen_at + bound - 5)[0]
        ok, line = status.judge(status_file, 300, now=beat + bound + 1)
        assert not ok and "sync loop stalled" in line
    finally:
        stop_sidecar(sidecar)
