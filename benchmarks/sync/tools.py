"""The tools compared, each as: make S3 hold a version (not measured), then one poll into a
target folder (measured), and where its live tree is.

s3sync runs in-process, as its sidecar does (`s3sync run` is one long-lived process); the
others run as a sidecar of theirs would, one process per poll (`while true; aws s3 sync`).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from benchmarks.sync.trees import relative_path
from s3sync import logs
from s3sync.client import ClientSettings, make_client
from s3sync.layout import Layout
from s3sync.location import S3Location
from s3sync.manifest import Limits
from s3sync.publish import Publisher
from s3sync.pull import PullSettings
from s3sync.remote import Remote
from s3sync.runner import Syncer

BUCKET = "bench"
AWSCLI_VENV = Path(__file__).resolve().parent / ".tools" / "awscli"


class S3sync:
    name = "s3sync"

    def __init__(self, server, tree: str):
        self.location = S3Location.parse(f"s3://{BUCKET}/{tree}/releases")
        self.client = make_client(ClientSettings())
        self.syncers: dict[Path, Syncer] = {}
        logs.configure("error", json_output=True)

    def upload(self, src: Path, changed: list[int] | None, deleted: list[int]) -> None:
        Publisher(self.client, self.location, Limits()).publish(src)

    def poll(self, target: Path) -> float:
        syncer = self.syncers.get(target)
        if syncer is None:  # a new sidecar: a cold start
            remote = Remote(self.client, self.location, Limits(), "manifest", download_attempts=5)
            syncer = Syncer(remote, Layout(target), PullSettings(), None, logs.get_logger())
            syncer.prepare()
            self.syncers[target] = syncer
        started = time.perf_counter()
        syncer.poll()
        return time.perf_counter() - started

    def live(self, target: Path) -> Path:
        return target / "current"


class PlainPrefix:
    """The tools that read a plain prefix, kept by uploading each changed file."""

    def __init__(self, server, tree: str):
        self.server = server
        self.prefix = f"{tree}/plain"  # one prefix per tree: nothing left from the last one
        self.s3 = boto3.client("s3", config=boto3.session.Config(max_pool_connections=16))

    def upload(self, src: Path, changed: list[int] | None, deleted: list[int]) -> None:
        paths = [p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()]
        if changed is not None:
            paths = [relative_path(index) for index in changed]
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda rel: self.s3.upload_file(str(src / rel), BUCKET, f"{self.prefix}/{rel}"), paths
                )
            )
        for index in deleted:
            self.s3.delete_object(Bucket=BUCKET, Key=f"{self.prefix}/{relative_path(index)}")

    def live(self, target: Path) -> Path:
        return target

    def _timed(self, command: list[str], env: dict, drop: tuple[str, ...] = ()) -> float:
        environment = {key: value for key, value in {**os.environ, **env}.items() if key not in drop}
        started = time.perf_counter()
        result = subprocess.run(command, env=environment, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr[-1000:]}")
        return elapsed


class AwsCli(PlainPrefix):
    name = "aws s3 sync --delete"

    @staticmethod
    def available() -> str | None:
        return (
            None
            if awscli()
            else f"no awscli: python3 -m venv {AWSCLI_VENV} && {AWSCLI_VENV}/bin/pip install awscli"
        )

    def poll(self, target: Path) -> float:
        target.mkdir(parents=True, exist_ok=True)
        command = [
            awscli(),
            "s3",
            "sync",
            f"s3://{BUCKET}/{self.prefix}",
            str(target),
            "--delete",
            "--only-show-errors",
        ]
        return self._timed(command, {})


class Rclone(PlainPrefix):
    name = "rclone sync --checksum"

    @staticmethod
    def available() -> str | None:
        return None if shutil.which("rclone") else "no rclone: apt-get install rclone"

    def poll(self, target: Path) -> float:
        env = {
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": self.server.endpoint,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": "bench",
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": "bench",
            "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
        }
        command = [
            "rclone", "sync", "--checksum", "--fast-list", "--transfers", "16",
            f"bench:{BUCKET}/{self.prefix}", str(target),
        ]  # fmt: skip
        # rclone's AWS SDK cannot load a custom CA bundle into its transport; the server is plain HTTP.
        return self._timed(command, env, drop=("AWS_CA_BUNDLE",))


class AirflowBundle(PlainPrefix):
    """The amazon provider's S3DagBundle: its refresh, timed inside one Airflow process."""

    name = "Airflow S3DagBundle"
    SCRIPT = """
import json, sys, time
from airflow.providers.amazon.aws.bundles.s3 import S3DagBundle
bundle = S3DagBundle(name="bench", bucket_name=sys.argv[1], prefix=sys.argv[2], aws_conn_id="aws_default")
started = time.perf_counter()
bundle.initialize()
bundle.refresh()
print(json.dumps({"seconds": time.perf_counter() - started, "path": str(bundle.path)}))
"""

    def __init__(self, server, tree: str):
        super().__init__(server, tree)
        self.paths: dict[Path, Path] = {}

    @staticmethod
    def available() -> str | None:
        try:
            import airflow.providers.amazon.aws.bundles.s3  # noqa: F401
        except ImportError as exc:
            return f"no Airflow amazon provider with S3DagBundle here: {exc}"
        return None

    def poll(self, target: Path) -> float:
        env = {
            "AIRFLOW_HOME": str(target.parent / f"{target.name}-home"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(target),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{target.parent / f'{target.name}.db'}",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {
                    "conn_type": "aws",
                    "extra": {"endpoint_url": self.server.endpoint, "region_name": "us-east-1"},
                }
            ),
        }
        result = subprocess.run(
            [sys.executable, "-c", self.SCRIPT, BUCKET, self.prefix],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"S3DagBundle failed: {result.stderr[-1500:]}")
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        self.paths[target] = Path(answer["path"])
        return answer["seconds"]

    def live(self, target: Path) -> Path:
        return self.paths.get(target, target)


def awscli() -> str | None:
    installed = AWSCLI_VENV / "bin" / "aws"
    return str(installed) if installed.exists() else shutil.which("aws")


TOOLS = (S3sync, AwsCli, Rclone, AirflowBundle)
