"""Shared fixtures: a real S3 server on loopback, buckets, trees, and s3sync runners."""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from tests.support.hostile import GOOD, Bucket
from tests.support.trees import cli, live_snapshot, staging_entries, write_tree

REPO = Path(__file__).resolve().parent.parent


class S3Server:
    def __init__(self, endpoint: str, process: subprocess.Popen):
        self.endpoint = endpoint
        self.process = process

    def _call(self, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        with urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}{path}", data=data), timeout=10
        ) as response:
            return json.loads(response.read())

    def requests(self) -> list[list]:
        return self._call("/_test/requests")["requests"]

    def reset(self) -> None:
        self._call("/_test/reset", {})

    def fault(self, **rule) -> None:
        self._call("/_test/faults", rule)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    ready = tmp_path_factory.mktemp("s3server") / "port"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "support" / "s3server.py"), "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() or not ready.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the S3 test server did not start")
        time.sleep(0.05)
    endpoint = f"http://127.0.0.1:{ready.read_text()}"
    env = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    yield S3Server(endpoint, process)
    process.terminate()
    process.wait(10)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3(s3_server):
    return boto3.client("s3")


@pytest.fixture
def bucket(s3, s3_server) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3_server.reset()
    return name


@pytest.fixture
def source(bucket) -> str:
    return f"s3://{bucket}/dags"


def inventory(folder: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under `folder` but `skip`, never following a symlink: path -> what it is."""
    found: dict[str, tuple] = {}
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if Path(top) / d != skip]
        for name in dirs + names:
            path = Path(top) / name
            info = path.lstat()
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", info.st_mode)
            else:
                found[rel] = ("file", info.st_mode, path.read_bytes())
    return found


class Fence:
    """ROOT, and beside it a sentinel folder that hostile symlinks point into."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "root"
        self.outside = base / "outside"
        self.outside.mkdir(parents=True)
        (self.outside / "sentinel.txt").write_text("nothing may change here\n")
        release_like = self.outside / ("0" * 20)
        release_like.mkdir()
        (release_like / "dag.py").write_text("planted = True\n")

    def snapshot(self) -> dict[str, tuple]:
        return inventory(self.base, skip=self.root)

    def plant(self, rel: str, content: bytes | None = None) -> Path:
        """Put a file (or, with no content, a folder) outside ROOT, as part of what must not change."""
        path = self.outside / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        self.baseline = self.snapshot()
        return path


@pytest.fixture
def fence(tmp_path):
    """A ROOT with a sentinel folder beside it; the test fails if anything outside ROOT changed."""
    fence = Fence(tmp_path / "fence")
    fence.baseline = fence.snapshot()
    yield fence
    assert fence.snapshot() == fence.baseline, "something was written outside ROOT"


class LiveRoot:
    """A fenced ROOT with a good release live, the raw bucket behind it, and checks."""

    def __init__(self, fence: Fence, source: str, bucket):
        self.fence, self.source, self.bucket = fence, source, bucket
        self.target = fence.root
        assert cli("publish", write_tree(fence.base.parent / "good", GOOD), source) == 0
        assert cli("sync", "--once", "--source", source, "--target", self.target) == 0
        self.link = os.readlink(self.target / "current")
        self.release = self.link.rsplit("/", 1)[-1]
        self.tree = live_snapshot(self.target)

    def assert_untouched(self) -> None:
        """The good release is still live, whole, and the only one."""
        assert os.readlink(self.target / "current") == self.link
        assert live_snapshot(self.target) == self.tree
        assert staging_entries(self.target) == []
        assert os.listdir(self.target / ".s3sync" / "releases") == [self.release]


@pytest.fixture
def live_root(fence, s3, bucket, source) -> LiveRoot:
    return LiveRoot(fence, source, Bucket(s3, bucket))
