"""Helpers to make local trees, run the CLI, and inspect a sync ROOT."""

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s3sync.cli import main


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `root` (following `root` itself)."""
    found = {}
    for top, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(top) / name
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def tree_digests(files: dict[str, bytes | str]) -> dict[str, str]:
    return {
        rel: hashlib.sha256(c.encode() if isinstance(c, str) else c).hexdigest() for rel, c in files.items()
    }


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def cli_said(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in this process: (exit code, all it printed, logs included)."""
    capsys.readouterr()
    code = cli(*args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def cli_process(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "s3sync", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def live_snapshot(target: Path) -> dict[str, str]:
    return snapshot((target / "current").resolve())


def staging_entries(target: Path) -> list[str]:
    staging = target / ".s3sync" / "staging"
    return sorted(os.listdir(staging)) if staging.exists() else []


def make_syncer(source: str, target: Path, pinned: str | None = None, mode: str = "auto", **settings):
    """The real sync path, in process, so a test can drive one poll at a time."""
    from s3sync.client import ClientSettings, make_client
    from s3sync.layout import Layout
    from s3sync.location import S3Location
    from s3sync.logs import get_logger
    from s3sync.manifest import Limits
    from s3sync.pull import PullSettings
    from s3sync.remote import Remote
    from s3sync.runner import Syncer

    remote = Remote(make_client(ClientSettings()), S3Location.parse(source), Limits(), mode)
    syncer = Syncer(remote, Layout(target), PullSettings(**settings), pinned, get_logger())
    syncer.prepare()
    return syncer


def wait_for(predicate, timeout: float = 30, step: float = 0.001, what: str = "condition"):
    """Poll until `predicate()` is truthy, and return that value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)
    return value


def start_sidecar(
    source: str, target: Path, status_file: Path, *extra, metrics: bool = False, env: dict | None = None
):
    """`s3sync run` as its own process. stdout goes to STATUS_FILE.log and stderr to
    STATUS_FILE.err (files, not pipes: a full pipe would block the sidecar)."""
    command = [sys.executable, "-m", "s3sync", "run", "--source", source, "--target", str(target)]
    command += ["--status-file", str(status_file), *([] if metrics else ["--no-metrics"]), *map(str, extra)]
    with open(f"{status_file}.log", "a") as out, open(f"{status_file}.err", "a") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})}
        )
    process.status_file = status_file
    return process


def stop_sidecar(process: subprocess.Popen) -> str:
    """SIGTERM (thawing a frozen one first), wait, and return what it wrote to stdout."""
    process.send_signal(signal.SIGCONT)
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    with open(f"{process.status_file}.log") as out:
        return out.read()


def sidecar_errors(process: subprocess.Popen) -> str:
    with open(f"{process.status_file}.err") as err:
        return err.read()


_MEASURED = """
import atexit, runpy, sys
peak_file = sys.argv.pop(1)
def report():
    with open("/proc/self/status") as status, open(peak_file, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(report)
sys.argv[0] = "s3sync"
runpy.run_module("s3sync", run_name="__main__", alter_sys=True)
"""


def measured_run(
    *args: str, env: dict | None = None, timeout: float = 120
) -> tuple[int, str, str, float, float]:
    """Run `python -m s3sync ARGS`: (exit code, stdout, stderr, seconds, peak RSS in MB).

    The peak is the process's own VmHWM, read as it exits: rusage's ru_maxrss would carry the
    forking test process's peak over into the child."""
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", _MEASURED, str(peak_file), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        seconds = time.monotonic() - started
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return done.returncode, done.stdout, done.stderr, seconds, peak


def peak_rss_mb(pid: int) -> float:
    """The highest resident set size a running process has had, in MB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
