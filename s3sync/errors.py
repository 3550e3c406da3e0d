"""Exception types. Every message is one line a human can act on."""


class S3SyncError(Exception):
    """Base class for every error s3sync reports."""


class BadInput(S3SyncError):
    """Remote or local input is wrong and retrying will not fix it."""


class ManifestError(BadInput):
    """A manifest is malformed, unsafe or over a configured limit."""


class VerificationError(BadInput):
    """Downloaded bytes do not match what the manifest promises."""


class TargetError(S3SyncError):
    """The target filesystem refused a write (full, read-only, no permission)."""


class TransientError(S3SyncError):
    """S3 failed or timed out; the next attempt may succeed."""


class NoRelease(TransientError):
    """The source has nothing published yet."""


class PublishConflict(S3SyncError):
    """Another publisher moved LATEST.json while this one was publishing."""


class LockTimeout(TransientError):
    """The ROOT lock could not be taken in time."""
