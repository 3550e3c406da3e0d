"""s3sync releases as an Airflow 3 DAG bundle with versions: a DAG run keeps the code it started with.

    [dag_processor]
    dag_bundle_config_list = [{"name": "dags", "classpath": "s3sync.airflow_bundle.ReleaseBundle",
                               "kwargs": {"root": "/opt/airflow/dags-root", "source": "s3://bucket/dags"}}]

The version is the release id. Where each role finds the files:

- dag-processor (no version): `path` is a private link, BASE/live, to the release ROOT/current
  names. Only `refresh()` moves it, so the files Airflow lists and the version it records for
  them always agree; ROOT/current itself moves whenever the sidecar swaps.
- worker, and the dag-processor's callbacks (a version): `path` is VERSIONS/<id>, a real folder
  on local disk, copied from ROOT/.s3sync/releases/<id>, or fetched from `source` when the
  volume no longer has it; every file is checked against the release manifest.

BASE and VERSIONS are Airflow's <dag_bundle_storage_path>/<name> and .../versions. Airflow's
stale-version cleanup rmtree()s VERSIONS/<id> for every tracking file it finds old and unused,
and fails on a missing folder or a symlink: this bundle only ever renames a complete real
folder into place, holds the version's tracking lock from before it looks for the folder, and
drops tracking files whose folder is gone.
"""

import contextlib
import fcntl
import os
import secrets
import shutil
import time
from pathlib import Path

from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersionLock, get_bundle_tracking_dir
from airflow.exceptions import AirflowException

from s3sync.client import ClientSettings, make_client
from s3sync.errors import BadInput, S3SyncError, VerificationError
from s3sync.layout import Layout, replace_symlink
from s3sync.location import S3Location
from s3sync.manifest import RELEASE_ID, Limits
from s3sync.materialize import copy_from_root, fetch_from_source
from s3sync.pull import PullSettings
from s3sync.remote import Remote

LINK = "live"
# A tracking file is written a moment before its holder locks it: younger ones are left alone.
ORPHAN_MIN_AGE = 60.0


class ReleaseBundle(BaseDagBundle):
    """kwargs: `root`, the sidecar's --target (ROOT); `source`, its --source (s3://bucket/prefix),
    optional: without it a release no longer under ROOT cannot be served."""

    supports_versioning = True

    def __init__(self, *, root: str, source: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).absolute()
        self.source = source or None
        self._layout = Layout(self.root)
        self._link = self.base_dir / LINK
        self._version_hold: BundleVersionLock | None = None

    def __repr__(self) -> str:
        return f"ReleaseBundle(name={self.name}, root={self.root}, version={self.version})"

    # -- Airflow's interface -------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.versions_dir / self.version if self.version else self._link

    def get_current_version(self) -> str | None:
        """Never raises: the pinned version, or the release the private link names."""
        if self.version:
            return self.version
        target = self._link_target()
        release = Path(target).name if target else ""
        return release if RELEASE_ID.match(release) else None

    def initialize(self) -> None:
        """Raises only AirflowException, with one line saying what is wrong."""
        with _as_airflow_error(self.name):
            self._drop_orphan_tracking_files()
            if self.version:
                self._provide_version(self.version)
            else:
                self._check_root()
                with self.lock():
                    if self.get_current_version() is None:
                        self._follow_current()
        super().initialize()

    def refresh(self) -> None:
        if self.version:
            raise AirflowException(
                f"bundle {self.name}: release {self.version} is fixed; it is never refreshed"
            )
        with _as_airflow_error(self.name), self.lock():
            self._drop_orphan_tracking_files()
            self._check_root()
            self._follow_current()

    # -- the dag-processor's private link ------------------------------------------

    def _check_root(self) -> None:
        if not self._layout.releases.is_dir():
            raise AirflowException(
                f"bundle {self.name}: {self.root} is not an s3sync ROOT (no {self._layout.releases}); "
                "set kwargs.root to the sidecar's --target"
            )

    def _follow_current(self) -> None:
        """Point the private link at the release ROOT/current names. Call with self.lock() held."""
        release = self._layout.live_release()
        if release is None or not RELEASE_ID.match(release):
            raise AirflowException(
                f"bundle {self.name}: no release is live under {self.root} yet ({self._layout.current} "
                "is missing); is the s3sync sidecar running?"
            )
        target = str(self._layout.release_dir(release))
        if self._link_target() == target:
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        replace_symlink(self._link, target)

    def _link_target(self) -> str | None:
        try:
            return os.readlink(self._link)
        except OSError:
            return None

    # -- a version on local disk ---------------------------------------------------

    def _provide_version(self, release: str) -> None:
        if not RELEASE_ID.match(release):
            raise AirflowException(
                f"bundle {self.name}: {release!r} is not an s3sync release id (20 lowercase hex characters)"
            )
        if not self.source:
            self._check_root()
        # Held until this process exits: Airflow's cleanup never removes a version in use.
        self._version_hold = BundleVersionLock(bundle_name=self.name, bundle_version=release)
        self._version_hold.acquire()
        try:
            if not _is_real_dir(self.path):
                with self.lock():
                    if not _is_real_dir(self.path):
                        self._fill(release)
        except BaseException:
            self._release_hold(release)
            raise

    def _fill(self, release: str) -> None:
        """Make VERSIONS/<release> a complete, verified, real folder. Call with self.lock() held."""
        target = self.path
        if target.is_symlink() or target.is_file():
            target.unlink()  # not ours, and Airflow's cleanup cannot remove it
        staging = self.base_dir / f".staging-{release}-{secrets.token_hex(4)}"
        try:
            self._copy_or_fetch(release, staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _copy_or_fetch(self, release: str, staging: Path) -> None:
        limits = Limits()
        damaged = None
        if self._layout.releases.is_dir():
            try:
                if copy_from_root(self._layout, release, staging, limits):
                    return
            except VerificationError as exc:
                damaged = str(exc)
            shutil.rmtree(staging, ignore_errors=True)
        if not self.source:
            why = damaged or f"release {release} is not under {self.root} (collected, or never synced there)"
            raise AirflowException(
                f"bundle {self.name}: {why}, and the bundle has no source to fetch it from"
            )
        remote = Remote(make_client(ClientSettings()), _location(self.name, self.source), limits)
        fetch_from_source(remote, release, staging, PullSettings(limits))  # BadInput: _as_airflow_error

    def _release_hold(self, release: str) -> None:
        """After a failure: no tracking file may outlive this process without its folder."""
        if self._version_hold is not None:
            self._version_hold.release()
            self._version_hold = None
        if not _is_real_dir(self.path):
            with contextlib.suppress(OSError):
                os.unlink(get_bundle_tracking_dir(self.name) / release)

    def _drop_orphan_tracking_files(self) -> None:
        """Remove tracking files, not held by any process, whose version folder is missing or a
        symlink: Airflow's cleanup would fail on them at every pass."""
        tracking = get_bundle_tracking_dir(self.name)
        if not tracking.is_dir():
            return
        for file in tracking.iterdir():
            folder = self.versions_dir / file.name
            if _is_real_dir(folder) or time.time() - file.stat().st_mtime < ORPHAN_MIN_AGE:
                continue
            with contextlib.suppress(OSError), open(file, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: in use, leave it
                if folder.is_symlink():
                    folder.unlink()
                file.unlink()


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _location(bundle: str, source: str) -> S3Location:
    try:
        return S3Location.parse(source)
    except BadInput as exc:
        raise AirflowException(f"bundle {bundle}: kwargs.source: {exc}") from None


@contextlib.contextmanager
def _as_airflow_error(bundle: str):
    """Airflow expects AirflowException from a bundle; anything else stops the dag-processor."""
    try:
        yield
    except AirflowException:
        raise
    except (S3SyncError, OSError) as exc:
        raise AirflowException(f"bundle {bundle}: {exc}") from None
