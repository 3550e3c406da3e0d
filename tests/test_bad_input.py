"""Bad input of every class: a clear error, the live tree untouched, nothing written outside ROOT."""

import json
import tarfile

import pytest

from tests.support.hostile import entry_for, sha
from tests.support.manifests import manifest_bytes
from tests.support.trees import cli, live_snapshot, snapshot, write_tree


def sync_fails(source, target, capsys, *extra: str) -> str:
    capsys.readouterr()
    code = cli(
        "sync",
        "--once",
        "--source",
        source,
        "--target",
        target,
        "--timeout",
        "2",
        "--s3-retries",
        "2",
        *extra,
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("s3sync: sync failed")
    return err[0]


@pytest.mark.parametrize(
    "path, message",
    [
        ("/tmp/evil.py", "path is absolute"),
        ("../evil.py", "path contains '..'"),
        ("dags/../../evil.py", "path contains '..'"),
        ("dags//x.py", "empty segment"),
        ("x\u0000.py", "NUL"),
    ],
)
def test_unsafe_manifest_paths(live_root, source, capsys, path, message):
    data = b"evil = True\n"
    live_root.bucket.put_object(data)
    live_root.bucket.put_latest(manifest_bytes([entry_for(path, data)]))
    assert message in sync_fails(source, live_root.target, capsys)
    live_root.assert_untouched()


@pytest.mark.parametrize("paths", [["caf\u00e9.py", "cafe\u0301.py"], ["x.py", "X.py"], ["a", "a/b.py"]])
def test_colliding_manifest_paths(live_root, source, capsys, paths):
    data = b"x = 1\n"
    live_root.bucket.put_object(data)
    live_root.bucket.put_latest(manifest_bytes([entry_for(p, data) for p in paths]))
    line = sync_fails(source, live_root.target, capsys)
    assert "collide after normalisation" in line or "needs it as a folder" in line
    live_root.assert_untouched()


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "malformed JSON"),
        (b'"a string"', "not a JSON object"),
        (json.dumps({"format": "s3sync/v2", "files": []}).encode(), "unknown manifest format"),
        (
            manifest_bytes([entry_for("a.py", b"a")], release="0123456789abcdef0123"),
            "does not match its file list",
        ),
        (manifest_bytes([{"path": "a.py", "size": "12", "sha256": "0" * 64}]), "size of 'a.py'"),
    ],
)
def test_malformed_manifests(live_root, source, capsys, raw, message):
    live_root.bucket.put_latest(raw)
    assert message in sync_fails(source, live_root.target, capsys)
    live_root.assert_untouched()


def test_sha256_mismatch(live_root, source, capsys):
    claimed = b"print('reviewed')\n"
    live_root.bucket.put_object(b"print('tampered')\n", digest=sha(claimed))  # same size, other bytes
    live_root.bucket.put_latest(live_root.bucket.manifest([entry_for("dag.py", claimed)]))
    assert "dag.py: sha256 mismatch" in sync_fails(source, live_root.target, capsys)
    live_root.assert_untouched()


def test_object_longer_or_shorter_than_the_manifest_says(live_root, source, capsys):
    data = b"0123456789"
    digest = live_root.bucket.put_object(data + b"extra", digest=sha(data))
    live_root.bucket.put_latest(live_root.bucket.manifest([{"path": "a.py", "size": 10, "sha256": digest}]))
    assert "more than the 10 bytes" in sync_fails(source, live_root.target, capsys)
    live_root.assert_untouched()
    live_root.bucket.put_object(data[:4], digest=digest)
    assert "truncated, got 4 of 10 bytes" in sync_fails(source, live_root.target, capsys)
    live_root.assert_untouched()


def test_missing_object(live_root, source, capsys):
    live_root.bucket.put_latest(live_root.bucket.manifest([entry_for("never_uploaded.py", b"ghost")]))
    assert "object missing for 'never_uploaded.py'" in sync_fails(source, live_root.target, capsys)
    live_root.assert_untouched()


def test_limits(live_root, source, capsys):
    files = [entry_for(f"f{i}.py", f"{i}".encode()) for i in range(3)]
    for i in range(3):
        live_root.bucket.put_object(f"{i}".encode())
    live_root.bucket.put_latest(live_root.bucket.manifest(files))
    assert "3 files, over the limit of 2" in sync_fails(source, live_root.target, capsys, "--max-files", "2")
    assert "3 bytes in files, over the limit of 2" in sync_fails(
        source, live_root.target, capsys, "--max-bytes", "2"
    )
    assert "over the 100 limit" in sync_fails(source, live_root.target, capsys, "--max-manifest-bytes", "100")
    live_root.assert_untouched()


def pack_case(live_root, members_for) -> dict[str, bytes]:
    """A 60-file release (big enough for the pack) whose pack is built by `members_for`."""
    files = {f"p/f{i:02d}.py": f"v = {i}\n".encode() for i in range(60)}
    entries = [entry_for(path, data) for path, data in files.items()]
    for data in files.values():
        live_root.bucket.put_object(data)
    raw = live_root.bucket.manifest(entries)
    release = json.loads(raw)["release"]
    live_root.bucket.put_pack(release, members_for(files))
    live_root.bucket.put_latest(raw)
    return files


def assert_pack_given_up(live_root, source, capsys, files: dict[str, bytes], message: str) -> None:
    """The pack is refused with a warning; its files come as single verified objects instead."""
    capsys.readouterr()
    assert cli("sync", "--once", "--source", source, "--target", live_root.target) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    warning = next(r["detail"] for r in records if r["event"].startswith("release pack given up"))
    assert message in warning and "damaged" in warning, warning
    assert live_snapshot(live_root.target) == {path: sha(data) for path, data in files.items()}
    assert not (live_root.target.parent / "escape.py").exists()
    assert not any(p.is_symlink() for p in (live_root.target / "current").resolve().rglob("*"))


def regular(path: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(path)
    info.size = len(data)
    return info, data


def special(path: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(path)
    info.type, info.linkname = kind, linkname
    return info, None


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda f: [special("p/f00.py", tarfile.SYMTYPE, "/etc/passwd")], "is not a regular file"),
        (lambda f: [special("p/f00.py", tarfile.LNKTYPE, "../../etc/passwd")], "is not a regular file"),
        (lambda f: [special("p/f00.py", tarfile.CHRTYPE)], "is not a regular file"),
        (lambda f: [regular("p/zz_extra.py", b"x")], "is not in the manifest"),
        (lambda f: [regular("../escape.py", b"x")], "path contains '..'"),
        (lambda f: [regular("p/f00.py", b"v = 0 and more\n")], "is 15 bytes, manifest says 6"),
        (lambda f: [regular(p, d.replace(b"=", b"+")) for p, d in f.items()], "sha256 mismatch"),
    ],
)
def test_hostile_packs(live_root, source, capsys, make_bad, message):
    files = pack_case(live_root, make_bad)
    assert_pack_given_up(live_root, source, capsys, files, message)


def test_corrupt_pack_bytes(live_root, s3, bucket, source, capsys):
    files = pack_case(live_root, lambda f: [regular(p, d) for p, d in f.items()])
    release = json.loads(s3.get_object(Bucket=bucket, Key="dags/LATEST.json")["Body"].read())["release"]
    s3.put_object(Bucket=bucket, Key=f"dags/releases/{release}.tar.gz", Body=b"\x1f\x8b not gzip at all")
    assert_pack_given_up(live_root, source, capsys, files, "ompression method")


def test_s3_errors_are_retried(live_root, tmp_path, source, s3_server):
    write_tree(tmp_path / "src", {"dag.py": "v2\n"})
    assert cli("publish", tmp_path / "src", source) == 0
    s3_server.reset()
    s3_server.fault(method="GET", contains="/objects/", status=500, times=2)
    s3_server.fault(method="GET", contains="LATEST.json", status=503, times=1)
    assert cli("sync", "--once", "--source", source, "--target", live_root.target) == 0
    assert (live_root.target / "current" / "dag.py").read_text() == "v2\n"
    statuses = [r[3] for r in s3_server.requests()]
    assert statuses.count(500) == 2 and statuses.count(503) == 1


def test_truncated_bodies_and_timeouts_are_retried(live_root, tmp_path, source, s3_server):
    write_tree(tmp_path / "src", {"dag.py": "v2 " * 1000})
    assert cli("publish", tmp_path / "src", source) == 0
    s3_server.reset()
    s3_server.fault(method="GET", contains="/objects/", truncate=True, times=2)
    s3_server.fault(method="GET", contains="LATEST.json", delay=3, times=1)
    assert cli("sync", "--once", "--source", source, "--target", live_root.target, "--s3-timeout", "1") == 0
    assert (live_root.target / "current" / "dag.py").read_text() == "v2 " * 1000
    objects = [r for r in s3_server.requests() if "/objects/" in r[1]]
    assert len(objects) == 3


def test_s3_down_keeps_last_good_release(live_root, tmp_path, source, s3_server, capsys):
    write_tree(tmp_path / "src", {"dag.py": "v2\n"})
    assert cli("publish", tmp_path / "src", source) == 0
    s3_server.fault(method="GET", contains="/objects/", status=500, times=10_000)
    line = sync_fails(source, live_root.target, capsys, "--s3-retries", "2")
    assert "InternalError" in line
    live_root.assert_untouched()
    s3_server.reset()


def test_listing_with_unsafe_keys(tmp_path, s3, bucket, source, capsys):
    s3.put_object(Bucket=bucket, Key="dags/ok.py", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="dags/bad//x.py", Body=b"bad")
    target = tmp_path / "root"
    assert "empty segment" in sync_fails(source, target, capsys)
    assert not (target / "current").exists()
    assert set(snapshot(target)) == {".s3sync/lock"}  # no tree files, nothing staged
