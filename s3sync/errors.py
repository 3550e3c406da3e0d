"""Exception types. Every message is one line a human can act on."""

import re

MAX_LINE = 500


class S3SyncError(Exception):
    """Base class for every error s3sync reports."""


class BadInput(S3SyncError):
    """Remote or local input is wrong and retrying will not fix it."""


class ManifestError(BadInput):
    """A manifest is malformed, unsafe or over a configured limit."""

    def __init__(self, message: str, etag: str | None = None):
        super().__init__(message)
        self.etag = etag  # of the object refused, when it came from S3


class RefusedRelease(BadInput):
    """What LATEST.json names cannot go live (malformed, unsafe, over a limit, bytes wrong).
    The last good release stays live; the same LATEST.json is not judged again for a while."""

    def __init__(self, message: str, judged: bool = True):
        super().__init__(message)
        self.judged = judged  # False: this poll only saw that the refused LATEST.json is unchanged


class VerificationError(BadInput):
    """Downloaded bytes do not match what the manifest promises."""


class TargetError(S3SyncError):
    """The target filesystem refused a write (full, read-only, no permission)."""


class TransientError(S3SyncError):
    """S3 failed or timed out; the next attempt may succeed."""


class NoRelease(TransientError):
    """The source has nothing published yet."""


class Busy(TransientError):
    """Another sidecar on the same ROOT is making this release; it will be live shortly."""


class PublishConflict(S3SyncError):
    """Another publisher moved LATEST.json while this one was publishing."""


class LockTimeout(TransientError):
    """The ROOT lock could not be taken in time."""


def one_line(exc: BaseException) -> str:
    """An exception as one bounded line: our own messages as they are, anything else (a bug
    a hostile input set off) with its type, so the line still says what happened."""
    text = str(exc) if isinstance(exc, S3SyncError) else f"{type(exc).__name__}: {exc}"
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_LINE else f"{text[:MAX_LINE]}..."
