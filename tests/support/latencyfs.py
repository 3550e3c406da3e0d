"""A model of EFS for tests and benchmarks: `latencyfs.c`, a FUSE passthrough of a local folder
that waits a fixed time in every metadata change and every uncached lookup (by default 2.7 ms
and 0.5 ms, EFS General Purpose's order; the kernel caches entries and attributes 1 s, as NFS
does). Built here with the C compiler and Debian's libfuse3-dev, mounted, counted, unmounted.

    with LatencyMount(backing, mount) as efs:
        ...                   # work under `mount`
        efs.counts()          # {"link": 10000, "lookup": 20114, ...}
"""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

SOURCE = Path(__file__).with_name("latencyfs.c")
BUILT = Path(__file__).resolve().parents[2] / "build" / "latencyfs"
CHANGES = ("create", "mkdir", "link", "symlink", "unlink", "rmdir", "rename", "setattr")


def build() -> Path:
    """The model's binary, compiled once per version of its source."""
    code = SOURCE.read_bytes()
    binary = BUILT / f"latencyfs-{hashlib.sha256(code).hexdigest()[:12]}"
    if not binary.exists():
        BUILT.mkdir(parents=True, exist_ok=True)
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True, text=True, check=True
        ).stdout.split()
        partial = binary.with_suffix(".partial")
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(partial), str(SOURCE), *flags], check=True)
        partial.rename(binary)
    return binary


class LatencyMount:
    """`backing` served at `mount` through the model, for the length of a `with` block."""

    def __init__(
        self,
        backing: Path,
        mount: Path,
        mutate_ms: float = 2.7,
        lookup_ms: float = 0.5,
        cache_seconds: float = 1.0,
        threads: int = 64,
    ):
        self.backing, self.mount = backing, mount
        self.arguments = [
            str(round(mutate_ms * 1000)),
            str(round(lookup_ms * 1000)),
            str(cache_seconds),
            str(threads),
        ]
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "LatencyMount":
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mount.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(build()), str(self.backing), str(self.mount), *self.arguments],
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mount):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"latencyfs did not mount {self.mount}: {self.process.stderr.read()}")
            time.sleep(0.02)
        return self

    def counts(self) -> dict[str, int]:
        return json.loads((self.mount / ".latencyfs.json").read_bytes())

    def changes(self, before: dict[str, int] | None = None) -> int:
        """Metadata changes served (since `before`, a counts() taken earlier)."""
        now = self.counts()
        return sum(now[kind] - (before or {}).get(kind, 0) for kind in CHANGES)

    def __exit__(self, *exc) -> None:
        subprocess.run(["fusermount3", "-u", "-z", str(self.mount)], check=False, capture_output=True)
        if self.process is not None:
            self.process.wait(10)
