"""Retention that asks Airflow's metadata DB (real PostgreSQL) which releases are still in use.

The tables here hold only the columns the query reads; tests/e2e/test_versioned_bundle.py runs
the same query against Airflow 3.1.8's own schema.
"""

import secrets
import time

import psycopg
import pytest

from s3sync.inuse import InUseError, libpq_url, releases_in_use
from tests.support.trees import cli_process, make_syncer, start_sidecar, stop_sidecar, wait_for, write_tree

SERVER = "postgresql://postgres@127.0.0.1:5432"
SCHEMA = """
CREATE TABLE dag (dag_id text PRIMARY KEY, bundle_name text NOT NULL, bundle_version text, is_stale boolean);
CREATE TABLE dag_version (id uuid PRIMARY KEY, version_number int NOT NULL, dag_id text NOT NULL,
                          bundle_name text, bundle_version text);
CREATE TABLE dag_run (id serial PRIMARY KEY, dag_id text NOT NULL, run_id text NOT NULL, state text,
                      bundle_version text);
CREATE TABLE task_instance (id uuid PRIMARY KEY, dag_id text, run_id text, state text, dag_version_id uuid);
CREATE TABLE callback_request (id serial PRIMARY KEY, callback_data json NOT NULL);
"""


def release_id(n: int) -> str:
    return f"{n:020x}"


@pytest.fixture
def database():
    """A fresh database with the tables the query reads; dropped afterwards."""
    name = f"s3sync_inuse_{secrets.token_hex(4)}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield url
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_dag(conn, dag_id: str, bundle: str, versions: list[str], stale: bool = False) -> list[str]:
    """A DAG with one dag_version per release in `versions` (the last is the latest)."""
    conn.execute(
        "INSERT INTO dag VALUES (%s, %s, %s, %s)", (dag_id, bundle, versions[-1] if versions else None, stale)
    )
    ids = []
    for number, version in enumerate(versions, 1):
        ids.append(f"{secrets.randbelow(10**8):08d}-0000-0000-0000-{number:012d}")
        conn.execute(
            "INSERT INTO dag_version VALUES (%s, %s, %s, %s, %s)", (ids[-1], number, dag_id, bundle, version)
        )
    return ids


def add_run(conn, dag_id: str, run_id: str, state: str, version: str | None, ti_version_id=None) -> None:
    conn.execute(
        "INSERT INTO dag_run (dag_id, run_id, state, bundle_version) VALUES (%s, %s, %s, %s)",
        (dag_id, run_id, state, version),
    )
    if ti_version_id:
        conn.execute(
            "INSERT INTO task_instance VALUES (gen_random_uuid(), %s, %s, 'running', %s)",
            (dag_id, run_id, ti_version_id),
        )


def test_the_query_names_what_runs_versions_and_callbacks_use(database):
    r = {n: release_id(n) for n in range(1, 12)}
    with psycopg.connect(database, autocommit=True) as conn:
        old_first = add_dag(conn, "steady", "dags", [r[1], r[2]])  # latest version: r2
        add_dag(conn, "edited", "dags", [r[3], r[4]])  # latest: r4
        add_dag(conn, "deleted", "dags", [r[5]], stale=True)  # a stale DAG's releases are not needed
        add_dag(conn, "elsewhere", "other-bundle", [r[6]])
        add_run(conn, "edited", "running", "running", r[3])
        add_run(conn, "edited", "queued", "queued", r[7])
        add_run(conn, "edited", "done", "success", r[8])
        add_run(conn, "deleted", "failed", "failed", r[5])
        add_run(conn, "elsewhere", "other", "running", r[6])
        # a run on release r9 whose tasks belong to an older DAG version (callbacks load that one)
        add_run(conn, "steady", "pinned", "running", r[9], ti_version_id=old_first[0])
        conn.execute(
            "INSERT INTO callback_request (callback_data) VALUES (%s)",
            (
                '{"req_class": "DagCallbackRequest", "req_data": {"bundle_name": "dags", '
                f'"bundle_version": "{r[10]}"}}}}',
            ),
        )
    assert releases_in_use(database, "dags") == {r[1], r[2], r[3], r[4], r[7], r[9], r[10]}
    assert releases_in_use(database, "other-bundle") == {r[6], r[10]}


def test_sqlalchemy_urls_are_accepted_and_failures_are_one_line(database):
    assert libpq_url("postgresql+psycopg2://u:p@h:5432/db") == "postgresql://u:p@h:5432/db"
    assert releases_in_use(database.replace("postgresql://", "postgresql+psycopg2://"), "dags") == set()
    with pytest.raises(InUseError, match="must start with postgresql://"):
        libpq_url("mysql://u@h/db")
    with pytest.raises(InUseError) as refused:
        releases_in_use("postgresql://postgres@127.0.0.1:1/none", "dags", timeout=2)
    assert "\n" not in str(refused.value) and str(refused.value).startswith("cannot read releases in use")


def synced_root(source: str, tmp_path, count: int) -> tuple:
    """`count` releases published and synced one after another; (target, [ids, oldest first])."""
    from tests.test_pull import publish

    target = tmp_path / "root"
    syncer = make_syncer(source, target, keep=100, grace=0)
    ids = []
    for n in range(count):
        ids.append(publish(source, write_tree(tmp_path / f"tree{n}", {"dag.py": f"N = {n}\n"})))
        syncer.poll()
    return target, ids


def on_disk(target) -> set[str]:
    return {p.name for p in (target / ".s3sync" / "releases").iterdir()}


def test_gc_keeps_what_the_db_says_is_in_use(database, source, tmp_path):
    target, (a, b, c) = synced_root(source, tmp_path, 3)
    with psycopg.connect(database, autocommit=True) as conn:
        add_dag(conn, "d", "dags", [c])
        add_run(conn, "d", "long", "running", a)
    gc = ["gc", "--target", target, "--keep", "1", "--grace", "0", "--in-use-database", database]
    dry = cli_process(*gc, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == f"would remove {b}" and on_disk(target) == {a, b, c}
    done = cli_process(*gc)
    assert done.returncode == 0, done.stderr
    assert f"removed {b}" in done.stdout and on_disk(target) == {a, c}
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE dag_run SET state = 'success'")
    assert cli_process(*gc).returncode == 0 and on_disk(target) == {c}


def test_gc_deletes_nothing_when_the_db_cannot_be_read(source, tmp_path):
    target, ids = synced_root(source, tmp_path, 3)
    unreachable = "postgresql://postgres@127.0.0.1:1/airflow"
    result = cli_process(
        "gc", "--target", target, "--keep", "1", "--grace", "0", "--in-use-database", unreachable
    )
    assert result.returncode == 1 and on_disk(target) == set(ids)
    assert (
        result.stderr.startswith("s3sync: error: cannot read releases in use")
        and result.stderr.count("\n") == 1
    )
    for args, message in (
        (["--in-use-database", "mysql://x@y/z"], "must start with postgresql://"),
        ([], "not an s3sync ROOT"),
    ):
        where = tmp_path / "elsewhere" if not args else target
        bad = cli_process("gc", "--target", where, *args)
        assert bad.returncode == 2 and message in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    assert on_disk(target) == set(ids)


def test_the_sync_loop_collects_a_release_once_its_run_ends(database, source, tmp_path):
    from tests.test_pull import publish

    a = publish(source, write_tree(tmp_path / "a", {"dag.py": "A = 1\n"}))
    with psycopg.connect(database, autocommit=True) as conn:
        add_dag(conn, "d", "dags", [a])
        add_run(conn, "d", "long", "running", a)
    target = tmp_path / "root"
    sidecar = start_sidecar(
        source,
        target,
        tmp_path / "status.json",
        "--interval",
        "0.2",
        "--keep",
        "1",
        "--grace",
        "0",
        "--gc-interval",
        "0.5",
        env={"S3SYNC_IN_USE_DATABASE": database},
    )
    try:
        wait_for(lambda: (target / ".s3sync" / "releases" / a).is_dir(), 30, 0.05, "release A")
        b = publish(source, write_tree(tmp_path / "b", {"dag.py": "B = 2\n"}))
        wait_for(lambda: (target / "current").resolve().name == b, 30, 0.05, "release B live")
        time.sleep(2)  # four collections
        assert on_disk(target) == {a, b}
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("UPDATE dag_run SET state = 'success'")
            conn.execute("UPDATE dag SET bundle_version = %s", (b,))
            conn.execute("UPDATE dag_version SET bundle_version = %s", (b,))
        wait_for(lambda: on_disk(target) == {b}, 10, 0.1, "release A collected")
    finally:
        log = stop_sidecar(sidecar)
    assert '"pruned"' in log and a in log


def test_bad_input_never_reaches_the_database(tmp_path):
    result = cli_process(
        "run", "--source", "s3://b/p", "--target", tmp_path, "--in-use-database", "sqlite:///x.db"
    )
    assert result.returncode == 2 and "must start with postgresql://" in result.stderr
    assert not (tmp_path / ".s3sync").exists()
