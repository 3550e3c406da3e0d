"""Files and folders under one folder, never through a symlink: each path component is opened
relative to its parent's descriptor with O_NOFOLLOW (openat-style). A symlink planted
anywhere below the folder makes the operation fail; it never leads a write out of it.

The folder itself is opened by its path (ROOT is the operator's choice, a symlink there is
theirs); everything below it is walked component by component.
"""

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

DIR_FLAGS = _DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_REMOVE_DEPTH = 512  # deeper trees are refused rather than held open level by level


def open_regular(path: Path):
    """A regular file opened for reading in binary, never through a final symlink, and
    never blocking on a FIFO planted in its place."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def open_folder(parent: int, name: str, create: bool = False) -> int:
    """The descriptor of folder `name` under `parent`; made first when `create` and missing."""
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):  # another writer made it meanwhile: open that
        os.mkdir(name, 0o755, dir_fd=parent)
    return os.open(name, _DIR, dir_fd=parent)


def open_below(root: Path, rel: str = "", create: bool = False) -> int:
    """Open ROOT by its path, then each component of `rel` without following symlinks."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in filter(None, rel.split("/")):
        try:
            child = open_folder(fd, part, create)
        finally:
            os.close(fd)
        fd = child
    return fd


class Cursor:
    """Writes under one folder. It keeps the folder of the last write open: a release's files
    come sorted, so the files of one folder follow each other and each folder is walked once."""

    def __init__(self, top: int):
        self.top = top
        self._folder: tuple[str, int] | None = None

    def folder(self, rel_folder: str) -> int:
        if self._folder is not None and self._folder[0] == rel_folder:
            return self._folder[1]
        self._drop()
        fd = os.dup(self.top)
        for part in filter(None, rel_folder.split("/")):
            try:
                child = open_folder(fd, part, create=True)
            finally:
                os.close(fd)
            fd = child
        self._folder = (rel_folder, fd)
        return fd

    def create(self, rel: str) -> int:
        """A new read-only file at `rel`, open for writing; it must not exist."""
        folder, name = _split(rel)
        return os.open(name, _NEW_FILE, 0o444, dir_fd=self.folder(folder))

    def link(self, source: str, rel: str) -> None:
        """A hard link at `rel` to the file at path `source`."""
        folder, name = _split(rel)
        os.link(source, name, dst_dir_fd=self.folder(folder), follow_symlinks=False)

    def lstat(self, rel: str) -> os.stat_result:
        folder, name = _split(rel)
        return os.stat(name, dir_fd=self.folder(folder), follow_symlinks=False)

    def unlink(self, rel: str) -> None:
        folder, name = _split(rel)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.folder(folder))

    def _drop(self) -> None:
        if self._folder is not None:
            os.close(self._folder[1])
            self._folder = None

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> "Cursor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Beneath:
    """An open folder that writes happen under (see the module docstring)."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, root: Path, rel: str = "", create: bool = False) -> "Beneath":
        return cls(root / rel if rel else root, open_below(root, rel, create))

    def cursor(self) -> Cursor:
        return Cursor(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Beneath":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _split(rel: str) -> tuple[str, str]:
    folder, _, name = rel.rpartition("/")
    return folder, name


def remove_tree(parent: int, name: str, progress: Callable[[], None] = lambda: None) -> None:
    """Delete `name` under `parent` and all below it. A symlink is removed, never followed;
    the walk is iterative (depth costs no recursion) and keeps one descriptor per level."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(name, dir_fd=parent)
            return
    except FileNotFoundError:
        return
    stack: list[tuple[int, str, int, list[str]]] = []  # (parent fd, name, own fd, subfolders left)
    stack.append((parent, name, os.open(name, _DIR, dir_fd=parent), []))
    _empty_files(stack[-1], progress)
    try:
        while stack:
            up, here, fd, subfolders = stack[-1]
            if subfolders:
                child = subfolders.pop()
                if len(stack) >= MAX_REMOVE_DEPTH:
                    raise OSError(f"{here}: more than {MAX_REMOVE_DEPTH} levels of folders; not removed")
                try:
                    stack.append((fd, child, os.open(child, _DIR, dir_fd=fd), []))
                except NotADirectoryError:  # or a symlink: ELOOP below
                    os.unlink(child, dir_fd=fd)
                    continue
                except OSError as exc:
                    if exc.errno != 40:  # ELOOP: the folder became a symlink meanwhile
                        raise
                    os.unlink(child, dir_fd=fd)
                    continue
                _empty_files(stack[-1], progress)
                continue
            os.close(fd)
            stack.pop()
            os.rmdir(here, dir_fd=up)
            progress()
    finally:
        for _up, _here, fd, _left in stack:
            os.close(fd)


def _empty_files(level: tuple[int, str, int, list[str]], progress: Callable[[], None]) -> None:
    """Unlink every non-folder entry of this level; remember its subfolders."""
    _up, _here, fd, subfolders = level
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
                progress()


def walk_files(top: Path) -> Iterator[tuple[str, os.DirEntry]]:
    """(relative path, entry) of everything under `top` that is not a folder, iteratively and
    without following symlinks (a symlink is reported as itself)."""
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(top / rel if rel else top) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                else:
                    yield path, entry
