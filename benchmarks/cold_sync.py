"""Cold sync of many small files: s3sync (pack, and one GET per file) against plain boto3.

Anchor: a plain boto3 download of every object with 16 threads and no verification,
which is what a hand-written sidecar does. Everything runs against one local S3 server
in one run, so the ratios are comparable; the absolute seconds are this machine's.

    .venv/bin/python -m benchmarks.cold_sync [--files 10000]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent


def start_server(workdir: Path) -> subprocess.Popen:
    ready = workdir / "port"
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests/support/s3server.py"), "--ready-file", str(ready)]
    )
    while not ready.exists() or not ready.read_text():
        time.sleep(0.05)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{ready.read_text()}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
        }
    )
    return server


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def naive_download(bucket: str, prefix: str, dest: Path) -> float:
    s3 = boto3.client("s3", config=boto3.session.Config(max_pool_connections=16))
    started = time.perf_counter()
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]

    def fetch(key: str) -> None:
        path = dest / key[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(fetch, keys))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="s3sync-bench-"))
    server = start_server(workdir)
    try:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench")
        src = workdir / "src"
        for i in range(args.files):
            path = src / f"group{i % 100:02d}" / f"dag_{i:05d}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# dag {i}\nfrom airflow import DAG\nDAG_ID = 'dag_{i}'\n")
        s3sync = [sys.executable, "-m", "s3sync"]
        publish_s = timed([*s3sync, "publish", str(src), "s3://bench/dags"])
        for i in range(args.files):  # the same tree as plain objects, for the anchor
            rel = f"group{i % 100:02d}/dag_{i:05d}.py"
            s3.put_object(Bucket="bench", Key=f"plain/{rel}", Body=(src / rel).read_bytes())

        anchor = naive_download("bench", "plain/", workdir / "naive")
        sync = [*s3sync, "sync", "--once", "--source", "s3://bench/dags", "--log-level", "warning"]
        with_pack = timed([*sync, "--target", str(workdir / "pack")])
        release = os.readlink(workdir / "pack" / "current").rsplit("/", 1)[-1]
        s3.delete_object(Bucket="bench", Key=f"dags/releases/{release}.tar.gz")
        per_file = timed([*sync, "--target", str(workdir / "perfile")])
        listing = timed(
            [
                *sync[:-4],
                "--source",
                "s3://bench/plain",
                "--log-level",
                "warning",
                "--target",
                str(workdir / "listing"),
            ]
        )
        rows = [
            ("plain boto3, 16 threads, unverified (anchor)", anchor),
            ("s3sync cold sync, release pack (1 GET)", with_pack),
            ("s3sync cold sync, one verified GET per file", per_file),
            ("s3sync cold sync, listing mode (plain prefix)", listing),
        ]
        print(f"\ncold sync of {args.files} small files (publish took {publish_s:.1f} s)\n")
        print(f"{'method':<50} {'seconds':>8} {'x anchor':>9}")
        for name, seconds in rows:
            print(f"{name:<50} {seconds:>8.2f} {seconds / anchor:>9.2f}")
    finally:
        server.terminate()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
