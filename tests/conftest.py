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
