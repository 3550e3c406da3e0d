"""Hostile releases, class 3: rollback by a bucket write alone.

The sidecar moves on its own only to a newer generation of the lineage it follows. A
release that is not newer in that lineage (an older generation, a LATEST.json without
its lineage or with another one, a plain listing where LATEST.json was) stays where it is
until an operator says so: `s3sync rollback` (a new generation of the same lineage), a
pin (`--release`), or `--adopt-lineage`.
"""

import json

import pytest

from tests.support.releases import Releases, live_release
from tests.support.trees import cli, cli_said, make_syncer


@pytest.fixture
def history(tmp_path, fence, source, bucket, s3):
    """Releases A (generation 1) and B (generation 2) published; B live under ROOT."""
    releases = Releases(source, tmp_path)
    history.a = releases.publish(1, {"dag.py": "version = 'A'\n"})
    history.b = releases.publish(2, {"dag.py": "version = 'B'\n"})
    history.raw_a = s3.get_object(Bucket=bucket, Key=f"dags/releases/{history.a}.json")["Body"].read()
    history.lineage = json.loads(s3.get_object(Bucket=bucket, Key="dags/LATEST.json")["Body"].read())[
        "lineage"
    ]
    history.target = fence.root
    history.put_latest = lambda raw: s3.put_object(Bucket=bucket, Key="dags/LATEST.json", Body=raw)
    assert cli("sync", "--once", "--source", source, "--target", fence.root) == 0
    assert live_release(fence.root) == history.b
    return history


def a_as(history, **changes) -> bytes:
    document = json.loads(history.raw_a)
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return json.dumps(document).encode()


@pytest.fixture
def sync_once(history, source, capsys):
    """`s3sync sync --once` on the history's ROOT: (exit code, all it said)."""

    def run(*extra: str) -> tuple[int, str]:
        target = history.target
        return cli_said(
            capsys, "sync", "--once", "--source", source, "--target", target, "--timeout", "5", *extra
        )

    return run


@pytest.mark.parametrize(
    "changes",
    [
        {"lineage": None, "generation": 50},  # the lineage dropped: "a new history"
        {"lineage": "0123456789abcdef", "generation": 50},  # another lineage
        {"lineage": "0123456789abcdef", "generation": 1},
    ],
    ids=["lineage-dropped", "other-lineage", "other-lineage-low-generation"],
)
def test_a_bucket_write_alone_never_moves_current_to_another_history(history, source, changes, sync_once):
    history.put_latest(a_as(history, **changes))
    code, said = sync_once()
    assert live_release(history.target) == history.b, said
    assert code == 0 and "not followed" in said and "--adopt-lineage" in said, said


def test_an_older_generation_of_the_same_lineage_is_not_followed(history, source, sync_once):
    history.put_latest(a_as(history, generation=1))
    code, said = sync_once()
    assert code == 0 and live_release(history.target) == history.b, said


def test_a_listing_where_latest_was_is_not_followed(history, source, s3, bucket, sync_once):
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.put_object(Bucket=bucket, Key="dags/plain.py", Body=b"planted = True\n")
    code, said = sync_once()
    assert code == 0 and live_release(history.target) == history.b, said
    assert "not followed" in said


def test_the_run_loop_refuses_it_too_and_health_says_why(history, source):
    syncer = make_syncer(source, history.target)
    history.put_latest(a_as(history, lineage=None, generation=50))
    outcome = syncer.poll()
    assert outcome.action == "other-lineage" and live_release(history.target) == history.b


def test_s3sync_rollback_is_the_operators_way_back(history, source, sync_once):
    assert cli("rollback", history.a, "--source", source) == 0
    code, said = sync_once()
    assert code == 0 and live_release(history.target) == history.a, said


def test_a_pin_moves_anywhere(history, source, sync_once):
    history.put_latest(a_as(history, lineage=None, generation=50))
    code, said = sync_once("--release", history.a)
    assert code == 0 and live_release(history.target) == history.a, said


@pytest.mark.parametrize("adopt", ["none", "any"])
def test_adopting_a_lineage_follows_it_from_then_on(history, source, tmp_path, adopt, sync_once):
    history.put_latest(a_as(history, lineage=None, generation=50))
    code, said = sync_once("--adopt-lineage", adopt)
    assert code == 0 and live_release(history.target) == history.a, said
    # adopted: within it, only newer generations
    history.put_latest(json.dumps(json.loads(a_as(history, lineage=None, generation=49)) | {}).encode())
    code, said = sync_once()
    assert code == 0 and live_release(history.target) == history.a, said


def test_a_prefix_emptied_and_published_again_needs_adoption(
    history, source, s3, bucket, tmp_path, sync_once
):
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    releases = Releases(source, tmp_path / "again")
    (tmp_path / "again").mkdir()
    c = releases.publish(3, {"dag.py": "version = 'C'\n"})
    code, said = sync_once()
    assert code == 0 and live_release(history.target) == history.b and "not followed" in said, said
    lineage = json.loads(s3.get_object(Bucket=bucket, Key="dags/LATEST.json")["Body"].read())["lineage"]
    assert lineage in said  # the line names what to adopt
    code, said = sync_once("--adopt-lineage", lineage)
    assert code == 0 and live_release(history.target) == c, said
