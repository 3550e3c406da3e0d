"""One release as a folder of its own, outside ROOT: copied from ROOT's kept releases, or
fetched from S3 when ROOT no longer has it. Every byte is checked against the manifest.

The versioned DAG bundle (s3sync.airflow_bundle) gives each task the release its DAG run
started on this way, on the task's local disk.
"""

from pathlib import Path

from s3sync.beneath import Beneath, open_regular
from s3sync.errors import VerificationError
from s3sync.layout import Layout
from s3sync.manifest import Limits
from s3sync.pull import PullSettings, stage
from s3sync.remote import Remote
from s3sync.verify import write_verified


def copy_from_root(layout: Layout, release: str, dest: Path, limits: Limits) -> bool:
    """Copy a release ROOT keeps into `dest` (must not exist). False when ROOT does not have
    it, or lost it while copying (garbage-collected meanwhile); raises VerificationError when
    a kept file differs from its manifest."""
    manifest = layout.load_manifest(release, limits)
    folder = layout.release_dir(release)
    if manifest is None or not folder.is_dir():
        return False
    dest.mkdir(parents=True)
    try:
        with Beneath.open(dest) as out, out.cursor() as cursor:
            for entry in manifest.files:
                with _kept_file(folder / entry.path) as source:
                    write_verified(source.read, cursor, entry)
    except FileNotFoundError:
        return False
    except VerificationError as exc:
        raise VerificationError(f"release {release} under {layout.root} is damaged: {exc}") from None
    return True


def _kept_file(path: Path):
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise
    except OSError:  # a symlink or a FIFO where the file was
        raise VerificationError(f"{path} is not a regular file") from None


def fetch_from_source(remote: Remote, release: str, dest: Path, settings: PullSettings) -> None:
    """Download a release by id (its manifest, then its pack or objects) into `dest`.
    Raises BadInput when the source has no such release."""
    fetched = remote.release(release)
    dest.mkdir(parents=True)
    with Beneath.open(dest) as out:
        stage(fetched, remote, out, settings, reusable={})
