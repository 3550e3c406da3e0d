"""The S3 server of the tests (moto's, on loopback), counting requests and bytes server-side."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Traffic:
    requests: Counter  # GET / HEAD / LIST / PUT / DELETE / POST -> count
    bytes_out: int  # response bodies: what the client downloaded

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def describe(self) -> str:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.requests.items()))
        return kinds or "0"


class Server:
    def __init__(self, workdir: Path):
        ready = workdir / "port"
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests/support/s3server.py"), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not ready.exists() or not ready.read_text():
            time.sleep(0.05)
        self.endpoint = f"http://127.0.0.1:{ready.read_text()}"
        self.env = {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update(self.env)

    def reset(self) -> None:
        self._call("/_test/reset", {})

    def traffic(self) -> Traffic:
        answer = self._call("/_test/requests")
        kinds = Counter(_kind(method, query) for method, _path, query, _status in answer["requests"])
        return Traffic(kinds, answer["bytes_out"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def _call(self, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        with urllib.request.urlopen(urllib.request.Request(self.endpoint + path, data=data), timeout=30) as r:
            return json.loads(r.read())


def _kind(method: str, query: str) -> str:
    if method == "GET" and ("list-type" in query or "prefix=" in query or query.startswith("delimiter")):
        return "LIST"
    return method
