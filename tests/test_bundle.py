"""The versioned DAG bundle (s3sync.airflow_bundle) on Airflow 3.1.8's own classes, against a
real S3 server and ROOTs the real sidecar code synced.

Each scenario runs in a fresh interpreter: Airflow reads its bundle storage path once, at import.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.trees import cli_process, make_syncer, snapshot, tree_digests, write_tree
from tests.test_pull import publish

BUNDLE = "releases"
CLASSPATH = "s3sync.airflow_bundle.ReleaseBundle"
TREE_A = {"dag.py": "CODE = 'A'\n", "helpers/words.py": "WORD = 'a'\n"}
TREE_B = {"dag.py": "CODE = 'B'\n", "helpers/words.py": "WORD = 'a'\n", "new.py": "NEW = 1\n"}


class Airflow:
    """Runs Python snippets in Airflow processes that share one bundle storage folder."""

    def __init__(self, tmp_path: Path, root: Path, source: str | None):
        self.storage = tmp_path / "bundles"
        self.tmp_path = tmp_path
        kwargs = {"root": str(root), **({"source": source} if source else {})}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.storage),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [{"name": BUNDLE, "classpath": CLASSPATH, "kwargs": kwargs}]
            ),
            # the stale-version cleanup judges every unused copy stale at once
            "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_AGE_THRESHOLD": "0",
            "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_MIN_VERSIONS": "0",
        }

    def run(self, code: str) -> dict:
        """Run `code` with `bundle(version)` and `cleanup()` defined; it fills the dict `out`."""
        result_file = self.tmp_path / f"result-{time.monotonic_ns()}.json"
        script = textwrap.dedent(
            """
            import json, sys
            from airflow.dag_processing.bundles.base import BundleUsageTrackingManager
            from airflow.dag_processing.bundles.manager import DagBundlesManager
            from airflow.exceptions import AirflowException

            def bundle(version=None):
                return DagBundlesManager().get_bundle(name=BUNDLE_NAME, version=version)

            def cleanup():
                BundleUsageTrackingManager().remove_stale_bundle_versions()

            def failure(call):
                try:
                    call()
                except AirflowException as exc:
                    return str(exc)
                return None

            out = {}
            """
        ).replace("BUNDLE_NAME", repr(BUNDLE))
        script += textwrap.dedent(code) + f"\njson.dump(out, open({str(result_file)!r}, 'w'))\n"
        done = subprocess.run(
            [sys.executable, "-c", script], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return json.loads(result_file.read_text())

    def versions(self) -> set[str]:
        folder = self.storage / BUNDLE / "versions"
        return {p.name for p in folder.iterdir()} if folder.exists() else set()

    def tracking(self) -> set[str]:
        folder = self.storage / "_tracking" / BUNDLE
        return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture
def synced(source, tmp_path):
    """Releases A then B published and synced into ROOT; (root, syncer, A, B)."""
    root = tmp_path / "root"
    syncer = make_syncer(source, root, keep=3, grace=0)
    a = publish(source, write_tree(tmp_path / "a", TREE_A))
    syncer.poll()
    b = publish(source, write_tree(tmp_path / "b", TREE_B))
    return root, syncer, a, b


def test_the_dag_processor_sees_a_new_release_only_after_refresh(synced, tmp_path):
    root, syncer, a, b = synced
    airflow = Airflow(tmp_path, root, source=None)
    first = airflow.run(
        """
        processor = bundle()
        processor.initialize()
        code = (processor.path / "dag.py").read_text()
        out["seen"] = [str(processor.path), processor.get_current_version(), code]
        """
    )
    link = str(airflow.storage / BUNDLE / "live")
    assert first["seen"] == [link, a, "CODE = 'A'\n"]
    syncer.poll()
    assert (root / "current").resolve().name == b  # the sidecar swapped ROOT/current
    later = airflow.run(
        """
        processor = bundle()
        processor.initialize()
        out["not_refreshed"] = [processor.get_current_version(), (processor.path / "dag.py").read_text()]
        processor.refresh()
        out["refreshed"] = [str(processor.path), processor.get_current_version(),
                            sorted(p.name for p in processor.path.iterdir())]
        """
    )
    assert later["not_refreshed"] == [a, "CODE = 'A'\n"]
    assert later["refreshed"] == [link, b, ["dag.py", "helpers", "new.py"]]
    assert snapshot(Path(link).resolve()) == tree_digests(TREE_B)


def test_a_worker_gets_its_version_as_a_local_verified_copy(synced, tmp_path):
    root, syncer, a, _b = synced
    syncer.poll()  # B live; A is still kept under ROOT
    airflow = Airflow(tmp_path, root, source=None)
    got = airflow.run(
        f"""
        import fcntl
        worker = bundle({a!r})
        worker.initialize()
        out["path"] = str(worker.path)
        out["version"] = worker.get_current_version()
        # Airflow's cleanup runs while this task holds version A: it must leave A alone
        cleanup()
        out["kept_while_held"] = worker.path.is_dir()
        """
    )
    local = airflow.storage / BUNDLE / "versions" / a
    assert got["path"] == str(local) and got["version"] == a and got["kept_while_held"]
    assert not local.is_symlink() and snapshot(local) == tree_digests(TREE_A)
    assert airflow.tracking() == {a}
    # the process that held A has exited: the next cleanup pass removes the copy and its tracking file
    airflow.run("cleanup()")
    assert airflow.versions() == set() and airflow.tracking() == set()


def test_a_release_gone_from_the_volume_comes_from_s3_or_fails_in_one_line(synced, source, tmp_path):
    root, syncer, a, _b = synced
    syncer.poll()
    assert cli_process("gc", "--target", root, "--keep", "1", "--grace", "0").returncode == 0
    assert not (root / ".s3sync" / "releases" / a).exists()
    without_source = Airflow(tmp_path / "no-source", root, source=None)
    (tmp_path / "no-source").mkdir()
    error = without_source.run(f"out['error'] = failure(bundle({a!r}).initialize)")["error"]
    assert error == (
        f"bundle {BUNDLE}: release {a} is not under {root} (collected, or never synced there), "
        "and the bundle has no source to fetch it from"
    )
    assert without_source.versions() == set() and without_source.tracking() == set()
    fresh = Airflow(tmp_path, root, source=source)
    fresh.run(f"bundle({a!r}).initialize()")
    assert snapshot(fresh.storage / BUNDLE / "versions" / a) == tree_digests(TREE_A)


def test_a_damaged_copy_on_the_volume_is_never_served(synced, source, tmp_path):
    root, _syncer, a, _b = synced
    kept = root / ".s3sync" / "releases" / a / "dag.py"
    kept.chmod(0o644)
    kept.write_text("CODE = 'X'\n")  # same size, other bytes
    broken = Airflow(tmp_path / "no-source", root, source=None)
    (tmp_path / "no-source").mkdir()
    error = broken.run(f"out['error'] = failure(bundle({a!r}).initialize)")["error"]
    assert error.startswith(f"bundle {BUNDLE}: release {a} under {root} is damaged: dag.py: sha256 mismatch")
    assert "\n" not in error and broken.versions() == set()
    healed = Airflow(tmp_path, root, source=source)
    healed.run(f"bundle({a!r}).initialize()")
    assert snapshot(healed.storage / BUNDLE / "versions" / a) == tree_digests(TREE_A)


def test_bad_configuration_is_one_clear_line(synced, source, tmp_path):
    root = synced[0]
    unknown = tmp_path / "no-such-root"
    elsewhere = Airflow(tmp_path, unknown, source=None)
    said = elsewhere.run(
        """
        out["processor"] = failure(bundle().initialize)
        out["version"] = bundle().get_current_version()
        out["refresh"] = failure(bundle().refresh)
        out["worker"] = failure(bundle("0123456789abcdef0123").initialize)
        """
    )
    assert said["processor"] == (
        f"bundle {BUNDLE}: {unknown} is not an s3sync ROOT (no {unknown}/.s3sync/releases); "
        "set kwargs.root to the sidecar's --target"
    )
    assert said["version"] is None
    assert said["refresh"] == said["worker"] == said["processor"]
    published = Airflow(tmp_path / "s3", root, source=source)
    (tmp_path / "s3").mkdir()
    said = published.run(
        """
        out["not_an_id"] = failure(bundle("main").initialize)
        out["unpublished"] = failure(bundle("0123456789abcdef0123").initialize)
        out["pinned_refresh"] = failure(bundle("0123456789abcdef0123").refresh)
        """
    )
    assert (
        said["not_an_id"]
        == f"bundle {BUNDLE}: 'main' is not an s3sync release id (20 lowercase hex characters)"
    )
    assert said["unpublished"] == f"bundle {BUNDLE}: no release 0123456789abcdef0123 at {source}"
    assert "never refreshed" in said["pinned_refresh"]
    assert published.versions() == set() and published.tracking() == set()


def test_airflow_cleanup_survives_what_would_crash_it(synced, tmp_path):
    root, _syncer, a, _b = synced
    airflow = Airflow(tmp_path, root, source=None)
    tracking = airflow.storage / "_tracking" / BUNDLE
    versions = airflow.storage / BUNDLE / "versions"

    def plant() -> None:
        """A tracking file whose folder is missing, and one whose folder is a symlink."""
        tracking.mkdir(parents=True, exist_ok=True)
        versions.mkdir(parents=True, exist_ok=True)
        for name in ("f" * 20, "e" * 20):
            (tracking / name).write_text("2024-01-01T00:00:00+00:00")
            os.utime(tracking / name, (time.time() - 3600,) * 2)
        (versions / ("e" * 20)).unlink(missing_ok=True)
        (versions / ("e" * 20)).symlink_to(root / ".s3sync" / "releases" / a)

    plant()
    crashed = airflow.run(
        """
        out["error"] = None
        try:
            cleanup()
        except OSError as exc:
            out["error"] = type(exc).__name__
        """
    )
    assert crashed["error"] is not None  # Airflow's cleanup alone fails on this state
    assert (root / ".s3sync" / "releases" / a / "dag.py").exists()  # and followed no symlink
    plant()
    airflow.run(f"held = bundle({a!r})\nheld.initialize()\ncleanup()")  # the bundle drops the orphans first
    assert airflow.tracking() == airflow.versions() == {a}  # held by that process while it ran
    airflow.run("cleanup()")
    assert airflow.tracking() == airflow.versions() == set()
    assert (root / ".s3sync" / "releases" / a / "dag.py").exists()
