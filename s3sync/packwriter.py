"""A pack's files written concurrently across folders while the pack is still being read."""

import io
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from s3sync.beneath import Beneath
from s3sync.manifest import FileEntry
from s3sync.parallel import folder_of
from s3sync.verify import write_verified


class FolderWriter:
    """Files that arrive one after another (a pack's members, in path order), written
    concurrently across folders. A folder's small files are read whole and handed to one worker
    as a batch, so they go in order on it; a big file is written as it is read. At most
    `max_buffered` bytes are held read but not yet written."""

    SMALL = 1024**2
    BATCH = 4 * 1024**2

    def __init__(self, folder: Beneath, workers: int, max_buffered: int = 16 * 1024**2):
        self.folder = folder
        self.max_buffered = max_buffered
        self.written: set[str] = set()  # paths written and verified
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="fs")
        self._futures: list[Future] = []
        self._batch: list[tuple[FileEntry, bytes]] = []
        self._batch_folder: str | None = None
        self._batch_bytes = 0
        self._buffered = 0
        self._room = threading.Condition()

    def write(self, entry: FileEntry, read: Callable[[int], bytes]) -> None:
        if entry.size > self.SMALL:
            self._send()
            with self.folder.cursor() as cursor:
                write_verified(read, cursor, entry)
            self.written.add(entry.path)
            return
        if folder_of(entry.path) != self._batch_folder or self._batch_bytes >= self.BATCH:
            self._send()
        data = read(entry.size + 1)  # a byte more than promised: write_verified sees an overlong member
        self._batch_folder = folder_of(entry.path)
        self._batch.append((entry, data))
        self._batch_bytes += len(data)

    def close(self) -> None:
        """Write what is left and wait for every write; raises the first failure."""
        try:
            self._send()
        finally:
            self._pool.shutdown(wait=True)
        for future in self._futures:
            future.result()

    def _send(self) -> None:
        if not self._batch:
            return
        batch, size = self._batch, self._batch_bytes
        self._batch, self._batch_folder, self._batch_bytes = [], None, 0
        with self._room:
            self._room.wait_for(lambda: self._buffered == 0 or self._buffered + size <= self.max_buffered)
            self._buffered += size
        self._futures.append(self._pool.submit(self._write_batch, batch, size))

    def _write_batch(self, batch: list[tuple[FileEntry, bytes]], size: int) -> None:
        try:
            with self.folder.cursor() as cursor:
                for entry, data in batch:
                    write_verified(io.BytesIO(data).read, cursor, entry)
                    self.written.add(entry.path)
        finally:
            with self._room:
                self._buffered -= size
                self._room.notify_all()
