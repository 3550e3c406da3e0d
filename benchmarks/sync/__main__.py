"""Run every tool through every scenario on each tree; print and write one markdown table."""

import argparse
import contextlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import boto3

from benchmarks.sync.scenarios import SCENARIOS, Bench
from benchmarks.sync.server import Server, Traffic
from benchmarks.sync.tools import BUCKET, TOOLS
from tests.support.latencyfs import LatencyMount

RESULTS = Path(__file__).resolve().parent / "results"
POLLS_PER_MONTH = 30 * 24 * 3600 // 10  # a 10 s poll
# S3 Standard, us-east-1, per 1,000 requests
PRICE = {"GET": 0.0004, "HEAD": 0.0004, "LIST": 0.005, "PUT": 0.005, "POST": 0.005}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--trees", default="1000x5000,10000x5000,5x5000000", help="FILESxBYTES, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (the median is shown)")
    parser.add_argument("--tools", default=",".join(tool.name for tool in TOOLS))
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    parser.add_argument(
        "--fs",
        default="local,efs",
        help="where the live trees are: local (this disk) and/or efs (tests/support/latencyfs: 2.7 ms a "
        "metadata change, 0.5 ms an uncached lookup)",
    )
    args = parser.parse_args()
    chosen = [tool for tool in TOOLS if tool.name in args.tools.split(",")]
    lines = [
        f"# s3sync against the alternatives ({datetime.now(UTC):%Y-%m-%d}, median of {args.runs} runs)",
        "",
        "One S3 server (moto) on loopback; requests counted by the server; bytes = response bodies.",
        "",
        "| fs | tree | tool | "
        + " | ".join(SCENARIOS)
        + " | changes picked up | mixed tree seen | idle $/month at 10 s |",
        "|" + "---|" * (len(SCENARIOS) + 6),
    ]
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as workdir:
        server = Server(Path(workdir))
        try:
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            for spec in args.trees.split(","):
                files, size = (int(part) for part in spec.split("x"))
                for tool_class in chosen:
                    for fs in args.fs.split(","):
                        with _live_trees(Path(workdir), fs) as targets:
                            lines.append(
                                _row(server, tool_class, Path(workdir), targets, fs, files, size, args.runs)
                            )
                        print(lines[-1], flush=True)
        finally:
            server.stop()
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


@contextlib.contextmanager
def _live_trees(workdir: Path, fs: str):
    """Where the tools keep their live trees: a folder on this disk, or one on the EFS model."""
    if fs == "local":
        yield workdir / "live"
    elif fs == "efs":
        with LatencyMount(workdir / "efs-backing", workdir / "efs") as mount:
            yield mount.mount / "live"
    else:
        raise SystemExit(f"--fs: unknown file system {fs!r} (want local or efs)")


def _row(server, tool_class, workdir: Path, targets: Path, fs: str, files: int, size: int, runs: int) -> str:
    tree = f"{files:,} x {_bytes(size)}"
    missing = tool_class.available() if hasattr(tool_class, "available") else None
    if missing:
        return (
            f"| {fs} | {tree} | {tool_class.name} | "
            + " | ".join(["not run"] * len(SCENARIOS))
            + f" | | {missing} | |"
        )
    tool = tool_class(server, f"{files}x{size}")
    bench = Bench(
        server,
        tool,
        workdir / tool_class.__name__ / str(files),
        targets / tool_class.__name__,
        files,
        size,
        runs,
    )
    bench.run()
    cells = []
    for scenario in SCENARIOS:
        seconds, traffic = bench.results[scenario].median()
        cells.append(
            f"{seconds:.2f} s, {traffic.total:,} req ({traffic.describe()}), {_bytes(traffic.bytes_out)}"
        )
    _, idle = bench.results["idle poll"].median()
    mixed = f"{bench.mixed.mixed} of {bench.mixed.passes} reads"
    picked = f"{bench.picked_up.seen} of {bench.picked_up.changes}"
    return (
        f"| {fs} | {tree} | {tool_class.name} | "
        + " | ".join(cells)
        + f" | {picked} | {mixed} | ${_monthly(idle):.2f} |"
    )


def _monthly(traffic: Traffic) -> float:
    return (
        sum(PRICE.get(kind, 0.0004) * count for kind, count in traffic.requests.items())
        * POLLS_PER_MONTH
        / 1000
    )


def _bytes(count: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


if __name__ == "__main__":
    main()
