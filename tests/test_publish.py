"""Publishing against a real S3 server: content addressing, the pointer, dry runs, watch."""

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

from s3sync.client import ClientSettings, make_client
from s3sync.errors import BadInput, PublishConflict
from s3sync.location import S3Location
from s3sync.publish import Publisher
from tests.support.trees import cli, wait_for, write_tree


def publisher(source: str) -> Publisher:
    return Publisher(make_client(ClientSettings()), S3Location.parse(source))


def latest(s3, bucket: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key="dags/LATEST.json")["Body"].read())


def keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def puts(s3_server) -> list[str]:
    return [path for method, path, _q, _s in s3_server.requests() if method == "PUT"]


def test_layout_and_content_addressing(tmp_path, s3, bucket, source, s3_server):
    src = write_tree(tmp_path / "src", {"a.py": "same\n", "b/c.py": "same\n", "d.py": "other\n"})
    result = publisher(source).publish(src)
    assert result.published and result.generation == 1
    objects = keys(s3, bucket, "dags/objects/")
    assert len(objects) == 2  # identical content is stored once
    for key in objects:
        digest = key.rsplit("/", 1)[-1]
        assert key == f"dags/objects/sha256/{digest[:2]}/{digest}"
    assert keys(s3, bucket, "dags/releases/") == [
        f"dags/releases/{result.release}.json",
        f"dags/releases/{result.release}.tar.gz",
    ]
    pointer = latest(s3, bucket)
    assert pointer["release"] == result.release and pointer["format"] == "s3sync/v1"
    assert [f["path"] for f in pointer["files"]] == ["a.py", "b/c.py", "d.py"]
    pack = s3.head_object(Bucket=bucket, Key=f"dags/releases/{result.release}.tar.gz")
    assert pointer["pack_bytes"] == pack["ContentLength"]
    for key in ("dags/LATEST.json", f"dags/releases/{result.release}.json"):
        stored = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        body = stored["Body"].read()
        assert stored["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_one_lineage_from_the_first_publish_through_rollbacks(tmp_path, s3, bucket, source):
    src = write_tree(tmp_path / "src", {"a.py": "1"})
    first = publisher(source).publish(src)
    lineage = latest(s3, bucket)["lineage"]
    assert len(lineage) == 16 and int(lineage, 16) >= 0
    (src / "a.py").write_text("2")
    publisher(source).publish(src)
    publisher(source).rollback(first.release)
    assert (latest(s3, bucket)["generation"], latest(s3, bucket)["lineage"]) == (3, lineage)
    s3.delete_object(Bucket=bucket, Key="dags/LATEST.json")  # history started over
    (src / "a.py").write_text("3")
    publisher(source).publish(src)
    assert latest(s3, bucket)["generation"] == 1 and latest(s3, bucket)["lineage"] != lineage


def test_pointer_is_written_last(tmp_path, bucket, source, s3_server):
    publisher(source).publish(write_tree(tmp_path / "src", {"a.py": "1", "b.py": "2"}))
    written = puts(s3_server)
    assert written[-1].endswith("/dags/LATEST.json")
    assert sum(p.endswith("LATEST.json") for p in written) == 1


def test_same_tree_same_release_nothing_uploaded_twice(tmp_path, bucket, source, s3_server):
    src = write_tree(tmp_path / "src", {f"f{i}.py": f"{i}\n" for i in range(20)})
    first = publisher(source).publish(src)
    s3_server.reset()
    again = publisher(source).publish(src)
    assert again.release == first.release and not again.published
    assert puts(s3_server) == []
    copy = write_tree(tmp_path / "copy", {f"f{i}.py": f"{i}\n" for i in range(20)})
    assert publisher(source).publish(copy).release == first.release


def test_only_new_content_is_uploaded(tmp_path, s3, bucket, source, s3_server):
    src = write_tree(tmp_path / "src", {f"f{i}.py": f"{i}\n" for i in range(20)})
    publisher(source).publish(src)
    (src / "f3.py").write_text("changed\n")
    s3_server.reset()
    result = publisher(source).publish(src)
    assert result.generation == 2 and result.uploaded == 1
    object_puts = [p for p in puts(s3_server) if "/objects/" in p]
    assert len(object_puts) == 1
    assert result.diff.changed == ["f3.py"]


def test_rollback_to_an_old_tree_reuses_it(tmp_path, s3, bucket, source, s3_server):
    src = write_tree(tmp_path / "src", {"a.py": "v1\n"})
    v1 = publisher(source).publish(src)
    (src / "a.py").write_text("v2\n")
    publisher(source).publish(src)
    (src / "a.py").write_text("v1\n")
    s3_server.reset()
    back = publisher(source).publish(src)
    assert back.release == v1.release and back.generation == 3 and back.uploaded == 0
    assert [p for p in puts(s3_server)] == [f"/{bucket}/dags/LATEST.json"]
    pack = s3.head_object(Bucket=bucket, Key=f"dags/releases/{v1.release}.tar.gz")
    assert latest(s3, bucket)["pack_bytes"] == pack["ContentLength"]  # carried over from the release


def test_pycache_and_excludes_are_skipped(tmp_path, s3, bucket, source):
    src = write_tree(
        tmp_path / "src",
        {
            "dag.py": "x",
            "__pycache__/dag.cpython-311.pyc": "bc",
            "pkg/mod.pyc": "bc",
            "tests/test_dag.py": "t",
            "notes.md": "n",
            "pkg/keep.py": "k",
        },
    )
    assert cli("publish", src, source, "--exclude", "tests", "--exclude", "*.md") == 0
    assert [f["path"] for f in latest(s3, bucket)["files"]] == ["dag.py", "pkg/keep.py"]


def test_dry_run_shows_diff_and_writes_nothing(tmp_path, bucket, source, s3_server, capsys):
    src = write_tree(tmp_path / "src", {"a.py": "1", "b.py": "2"})
    cli("publish", src, source)
    (src / "a.py").write_text("changed")
    (src / "b.py").unlink()
    (src / "c.py").write_text("new")
    s3_server.reset()
    capsys.readouterr()
    assert cli("publish", src, source, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "+ c.py" in out and "~ a.py" in out and "- b.py" in out
    assert "2 objects" in out
    assert puts(s3_server) == []


def test_concurrent_publisher_is_not_silently_overwritten(tmp_path, s3, bucket, source):
    ours, theirs = publisher(source), publisher(source)
    theirs.publish(write_tree(tmp_path / "base", {"a.py": "base"}))
    read_pointer = ours.pointer

    def pointer_then_someone_else_publishes():
        pointer = read_pointer()
        theirs.publish(write_tree(tmp_path / "theirs", {"a.py": "theirs"}))
        return pointer

    ours.pointer = pointer_then_someone_else_publishes
    with pytest.raises(PublishConflict, match="changed while publishing"):
        ours.publish(write_tree(tmp_path / "ours", {"a.py": "ours"}))
    assert latest(s3, bucket)["generation"] == 2  # theirs stands


def test_publish_refuses_symlinks_and_special_files(tmp_path, source, capsys):
    src = write_tree(tmp_path / "src", {"a.py": "x"})
    os.symlink("/etc/passwd", src / "link.py")
    assert cli("publish", src, source) == 1
    assert "symlink 'link.py'" in capsys.readouterr().err
    (src / "link.py").unlink()
    os.mkfifo(src / "pipe")
    with pytest.raises(BadInput, match="not a regular file"):
        publisher(source).publish(src)


def test_empty_and_missing_folders_are_refused(tmp_path, source, bucket, s3, capsys):
    (tmp_path / "empty").mkdir()
    assert cli("publish", tmp_path / "empty", source) == 1
    assert "no files to publish" in capsys.readouterr().err
    assert cli("publish", tmp_path / "nope", source) == 1
    assert "not a directory" in capsys.readouterr().err
    assert keys(s3, bucket, "dags/") == []


def test_releases_and_rollback(tmp_path, s3, bucket, source, capsys):
    src = write_tree(tmp_path / "src", {"a.py": "v1"})
    first = publisher(source).publish(src)
    (src / "a.py").write_text("v2")
    second = publisher(source).publish(src)
    capsys.readouterr()
    assert cli("releases", "--source", source) == 0
    out = capsys.readouterr().out.splitlines()
    assert first.release in out[1] and second.release in out[2] and "LATEST" in out[2]
    assert cli("rollback", first.release, "--source", source) == 0
    pointer = latest(s3, bucket)
    assert pointer["release"] == first.release and pointer["generation"] == 3
    assert cli("rollback", first.release, "--source", source) == 1
    assert "already LATEST" in capsys.readouterr().err
    assert cli("rollback", "f" * 20, "--source", source) == 1
    assert "no release ffff" in capsys.readouterr().err
    assert latest(s3, bucket)["generation"] == 3


def test_watch_republishes_after_edits(tmp_path, s3, bucket, source):
    src = write_tree(tmp_path / "src", {"dag.py": "v1\n"})
    watcher = subprocess.Popen(
        [sys.executable, "-m", "s3sync", "publish", str(src), source, "--watch", "--debounce", "0.3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        first = wait_for_latest(s3, bucket, lambda doc: True)
        (src / "dag.py").write_text("v2\n")
        (src / "new.py").write_text("n\n")
        second = wait_for_latest(s3, bucket, lambda doc: doc["release"] != first["release"])
        assert [f["path"] for f in second["files"]] == ["dag.py", "new.py"]
        assert second["generation"] == first["generation"] + 1
    finally:
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(20) == 0, watcher.stderr.read()


def test_watch_retries_a_failed_publish_without_waiting_for_an_edit(tmp_path, s3, bucket):
    """The bucket appears only after the first publish failed (a local S3 restarted empty)."""
    late = f"{bucket}-late"
    src = write_tree(tmp_path / "src", {"dag.py": "v1\n"})
    log = tmp_path / "watch.log"
    command = [sys.executable, "-m", "s3sync", "publish", str(src), f"s3://{late}/dags"]
    with open(log, "w") as out:
        watcher = subprocess.Popen(
            [*command, "--watch", "--retry-interval", "0.5"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: "publish failed" in log.read_text(), 30, step=0.1, what="a failed publish")
        s3.create_bucket(Bucket=late)
        assert wait_for_latest(s3, late, lambda doc: True)["files"][0]["path"] == "dag.py"
    finally:
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(20) == 0, log.read_text()
        for key in keys(s3, late, ""):
            s3.delete_object(Bucket=late, Key=key)
        s3.delete_bucket(Bucket=late)


def wait_for_latest(s3, bucket, predicate, timeout: float = 30) -> dict:
    def matching() -> dict | None:
        try:
            doc = latest(s3, bucket)
        except s3.exceptions.NoSuchKey:
            return None
        return doc if predicate(doc) else None

    return wait_for(matching, timeout, step=0.1, what="LATEST.json to reach the expected state")
