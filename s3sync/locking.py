"""POSIX record locks (fcntl), which NFSv4 and EFS honour across hosts.

A POSIX lock belongs to the process: closing any descriptor of the file drops
it. So each lock file is opened exactly once per holder, and a process never
probes a lock file it holds itself.
"""

import errno
import fcntl
import os
import time
from pathlib import Path

from s3sync.errors import LockTimeout

_OPEN = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


def open_lock_file(path: Path) -> int:
    """Open (or create) a lock file, never through a symlink: one in its place is removed."""
    try:
        return os.open(path, _OPEN | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    path.unlink()
    return os.open(path, _OPEN | os.O_CREAT | os.O_EXCL, 0o644)


class FileLock:
    def __init__(self, path: Path, timeout: float = 60.0):
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_lock_file(self.path)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeout(f"could not lock {self.path} within {self.timeout:g}s") from None
                time.sleep(0.02)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_lock(path: Path, create: bool = False) -> int | None:
    """Take the lock without waiting; return the descriptor holding it, or None if it is held
    (or, unless `create`, missing)."""
    try:
        fd = open_lock_file(path) if create else os.open(path, _OPEN)
    except OSError:  # missing, or a symlink
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None
