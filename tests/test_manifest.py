"""Unit tier: manifests, paths, retention rules, the pack-or-single-GETs choice. No S3."""

from dataclasses import replace

import pytest

from s3sync.errors import ManifestError
from s3sync.layout import LiveRecord, State
from s3sync.localtree import is_excluded
from s3sync.manifest import FileEntry, Limits, build, parse
from s3sync.pull import PullSettings, pack_is_cheaper
from s3sync.retention import releases_to_keep
from s3sync.safepath import check_no_collisions, check_relative_path
from tests.support.manifests import manifest_bytes

SHA = "a" * 64


def entry(path: str, size: int = 1, digest: str = SHA) -> FileEntry:
    return FileEntry(path, size, "sha256", digest)


def test_release_id_depends_only_on_content():
    a = build([entry("b.py"), entry("a.py")], generation=1)
    b = build([entry("a.py"), entry("b.py")], generation=7)
    assert a.release == b.release
    assert build([entry("a.py", size=2), entry("b.py")], 1).release != a.release
    assert build([entry("a.py", digest="b" * 64), entry("b.py")], 1).release != a.release


def test_manifest_round_trips():
    manifest = build([entry("dags/x.py"), entry("y.py", 5, "c" * 64)], 3, {"k": "v"}, "0123456789abcdef")
    parsed = parse(manifest.to_json_bytes(), Limits(), "here")
    assert parsed == manifest
    packed = replace(manifest, pack_bytes=1234)
    assert parse(packed.to_json_bytes(), Limits(), "here") == packed
    assert b'"pack_bytes"' not in manifest.to_json_bytes()
    unnamed = build([entry("a.py")], 1)  # manifests from before lineages: none, and none written
    assert (
        "lineage" not in unnamed.to_json_bytes().decode()
        and parse(unnamed.to_json_bytes(), Limits(), "h") == unnamed
    )


@pytest.mark.parametrize(
    "path, message",
    [
        ("/etc/passwd", "absolute"),
        ("../escape.py", "'..'"),
        ("a/../../b.py", "'..'"),
        ("a//b.py", "empty segment"),
        ("a/", "empty segment"),
        ("./a.py", "'.'"),
        ("a\x00b.py", "NUL"),
        ("a\\b.py", "backslash"),
        ("", "non-empty"),
        ("x/" + "y" * 300, "longer than 255"),
    ],
)
def test_unsafe_paths_are_refused(path, message):
    with pytest.raises(ManifestError, match=message):
        check_relative_path(path)


@pytest.mark.parametrize(
    "paths",
    [
        ["a.py", "a.py"],
        ["caf\u00e9.py", "cafe\u0301.py"],  # NFC and NFD spellings of the same name
        ["Dag.py", "dag.py"],
        ["pkg", "pkg/x.py"],  # a file that would have to be a folder
    ],
)
def test_colliding_paths_are_refused(paths):
    with pytest.raises(ManifestError, match=r"collide|folder"):
        check_no_collisions(paths)


def test_parse_rejects_each_malformation():
    good = [{"path": "a.py", "size": 1, "sha256": SHA}]
    cases = {
        b"{not json": "malformed JSON",
        b"[]": "not a JSON object",
        manifest_bytes(good, format="s3sync/v9"): "unknown manifest format",
        manifest_bytes(good, generation=-1): "generation",
        manifest_bytes(good, generation=True): "generation",
        manifest_bytes(good, release="0" * 20): "does not match",
        manifest_bytes(good, lineage="not-hex"): "lineage",
        manifest_bytes(good, lineage=7): "lineage",
        manifest_bytes(good, files="a.py"): "files must be a list",
        manifest_bytes([{"path": "a.py", "size": -1, "sha256": SHA}]): "size",
        manifest_bytes([{"path": "a.py", "size": 1, "sha256": "xyz"}]): "sha256",
        manifest_bytes([{"path": "a.py", "size": 1}]): "exactly one",
    }
    for raw, message in cases.items():
        with pytest.raises(ManifestError, match=message):
            parse(raw, Limits(), "test")


def test_limits_are_enforced():
    files = [{"path": f"f{i}.py", "size": 10, "sha256": SHA} for i in range(5)]
    raw = manifest_bytes(files)
    with pytest.raises(ManifestError, match="over the limit of 4"):
        parse(raw, Limits(max_files=4), "t")
    with pytest.raises(ManifestError, match="over the limit of 49"):
        parse(raw, Limits(max_bytes=49), "t")
    with pytest.raises(ManifestError, match="bytes, over the"):
        parse(raw, Limits(max_manifest_bytes=100), "t")
    assert len(parse(raw, Limits(max_files=5, max_bytes=50), "t").files) == 5


@pytest.mark.parametrize(
    "path, patterns, excluded",
    [
        ("pkg/__pycache__/x.cpython-311.pyc", (), True),
        ("x.pyc", (), True),
        ("x.py", (), False),
        ("tests/test_x.py", ("tests",), True),
        ("a/b/notes.md", ("*.md",), True),
        ("a/b/dag.py", ("*.md",), False),
    ],
)
def test_excludes(path, patterns, excluded):
    assert is_excluded(path, patterns) is excluded


def test_retention_keeps_live_newest_and_recent():
    now = 10_000.0
    history = [LiveRecord(f"r{i}", i, live_from=1000.0 + i, live_until=1001.0 + i) for i in range(6)]
    history[-1].live_until = None
    history[-2].live_until = now - 5  # replaced 5 s ago: a reader may still be inside
    state = State("s", "r5", 5, history)
    on_disk = {f"r{i}": 0.0 for i in range(6)} | {"stray-old": 0.0, "stray-new": now - 1}
    kept = releases_to_keep(state, on_disk, "r5", keep=2, grace=60, now=now)
    assert kept == {"r5", "r4", "stray-new"}
    kept = releases_to_keep(state, on_disk, "r5", keep=3, grace=0, now=now)
    assert kept == {"r5", "r4", "r3"}


def small_files(count: int, size: int = 5000) -> list[FileEntry]:
    return [entry(f"d/{i:05d}.py", size) for i in range(count)]


@pytest.mark.parametrize(
    "release_files, changed, pack_bytes, want_pack",
    [
        (small_files(10_000), 10_000, 30_000_000, True),  # cold start of many small files
        (small_files(10_000), 1_000, 30_000_000, True),  # a big diff
        (small_files(10_000), 100, 30_000_000, False),  # 100 files: 7 rounds of GETs beat 30 MB
        (small_files(10_000), 1, 30_000_000, False),
        (small_files(1_000), 100, 3_000_000, True),  # a small release: its pack is cheap
        (small_files(5, 5_000_000), 5, 25_000_000, False),  # a few big files: in parallel
        (small_files(10_000), 100, None, False),  # no pack_bytes: judged by the 50 MB unpacked
        (small_files(1_000), 1_000, None, True),
    ],
)
def test_pack_or_single_gets_by_what_the_diff_costs(release_files, changed, pack_bytes, want_pack):
    manifest = replace(build(release_files, 1), pack_bytes=pack_bytes)
    assert pack_is_cheaper(manifest, list(manifest.files[:changed]), PullSettings()) is want_pack


def test_pack_bytes_must_be_a_size():
    raw = build([entry("a.py")], 1).to_json_bytes().replace(b'"format"', b'"pack_bytes": -1, "format"')
    with pytest.raises(ManifestError, match="pack_bytes must be a non-negative integer"):
        parse(raw, Limits(), "here")
