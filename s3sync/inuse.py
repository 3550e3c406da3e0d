"""Which releases Airflow still needs: the garbage collector's read-only view of the metadata DB.

With the versioned DAG bundle (s3sync.airflow_bundle), a DAG run keeps the release it started
on until it ends, and callbacks load the release of a DAG version. Only the metadata database
knows which runs are queued or running, so the sidecar asks it right before deleting anything
(see docs/s3sync.md, "Versioned DAG bundle"). No Airflow import: one SQL query through psycopg.
"""

import re

from s3sync.errors import S3SyncError

# dag_run has no bundle column: a run's bundle is its DAG's.
QUERY = """
SELECT dr.bundle_version
  FROM dag_run dr JOIN dag d ON d.dag_id = dr.dag_id
 WHERE d.bundle_name = %(bundle)s AND dr.state IN ('queued', 'running')
UNION
SELECT dv.bundle_version
  FROM task_instance ti
  JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
  JOIN dag_version dv ON dv.id = ti.dag_version_id
 WHERE dv.bundle_name = %(bundle)s AND dr.state IN ('queued', 'running')
UNION
SELECT latest.bundle_version FROM (
    SELECT DISTINCT ON (dv.dag_id) dv.bundle_version
      FROM dag_version dv JOIN dag d ON d.dag_id = dv.dag_id
     WHERE dv.bundle_name = %(bundle)s AND NOT d.is_stale
     ORDER BY dv.dag_id, dv.version_number DESC
) latest
UNION
SELECT d.bundle_version FROM dag d WHERE d.bundle_name = %(bundle)s AND NOT d.is_stale
UNION
SELECT substring(cr.callback_data::text from '"bundle_version": ?"([0-9a-f]{20})"')
  FROM callback_request cr
"""
_DRIVER = re.compile(r"^postgres(?:ql)?(\+\w+)?://")


class InUseError(S3SyncError):
    """The metadata DB could not say which releases are in use: delete nothing."""


def libpq_url(database_url: str) -> str:
    """Airflow's SQLAlchemy URL (postgresql+psycopg2://...) as libpq takes it (postgresql://...)."""
    match = _DRIVER.match(database_url)
    if not match:
        raise InUseError("the in-use database URL must start with postgresql:// (or postgresql+DRIVER://)")
    return "postgresql://" + database_url[match.end() :]


def releases_in_use(database_url: str, bundle: str, timeout: float = 10.0) -> set[str]:
    """Release ids the bundle's queued and running DAG runs, latest DAG versions and pending
    callbacks refer to. Read-only transaction; raises InUseError on any failure."""
    import psycopg  # only the sidecars that use this hook need the driver loaded

    try:
        with (
            psycopg.connect(
                libpq_url(database_url),
                connect_timeout=max(1, round(timeout)),
                options=f"-c default_transaction_read_only=on -c statement_timeout={int(timeout * 1000)}",
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(QUERY, {"bundle": bundle})
            return {row[0] for row in cur.fetchall() if row[0]}
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InUseError(f"cannot read releases in use from the metadata DB: {detail}") from None
