"""A whole local Airflow 3.1 stack as processes: the same config and sidecar as on ECS.

    S3 + Secrets Manager   moto's server on a loopback port (tests/support/s3server.py)
    s3sync run             publishes land in ROOT/current, Airflow's dags_folder (plain mode)
    s3sync run, versioned  a second prefix and ROOT, served by the versioned DAG bundle
                           "releases" (s3sync.airflow_bundle) beside the plain "dags-folder"
    airflow ...            api-server, scheduler, dag-processor, triggerer, celery worker
    PostgreSQL, Redis      the machine's servers: a fresh database and an empty Redis DB

Everything it creates (processes, database, Redis DB contents, temp folder) goes in stop().
Run it by hand with `scripts/local-stack`.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import psycopg2
import redis
from cryptography.fernet import Fernet

from entrypoint.envfile import read_env_file
from tests.support.airflow_api import AirflowApi

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "airflow-e2e"
DAGS_URL = f"s3://{BUCKET}/dags"
VERSIONED_URL = f"s3://{BUCKET}/versioned"
VERSIONED_BUNDLE = "releases"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ROLES = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "celery-worker": ["celery", "worker", "--concurrency", "2"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalStack:
    def __init__(self, workdir: Path | None = None):
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
        self.home = self.workdir / "airflow-home"
        self.root = self.workdir / "dags-root"
        self.versioned_root = self.workdir / "versioned-root"
        self.logs = self.workdir / "logs"
        self.database = f"airflow_e2e_{secrets.token_hex(4)}"
        self.redis_db: int | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, list[str]] = {}
        self.spawn_env: dict[str, dict[str, str] | None] = {}
        self.api_port = free_port()
        self.health_port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.env: dict[str, str] = {}
        self.api = AirflowApi(self.api_url, "admin", self.password)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "LocalStack":
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            self._start_s3()
            self._create_database()
            self._claim_redis_db()
            self._write_home()
            self._migrate()
            # s3sync with its defaults (10 s polls), as the ECS sidecar runs it
            sidecar = ["run", "--source", DAGS_URL, "--target", str(self.root)]
            self._spawn("s3sync", [str(BIN / "s3sync"), *sidecar])
            self._start_versioned_sidecar()
            for role, args in ROLES.items():
                self._spawn(role, [str(BIN / "airflow"), *args])
            self.wait_for_api()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._made = {"groups": [p.pid for p in self.processes.values()], "redis_db": self.redis_db}
        for name, process in reversed(list(self.processes.items())):
            _stop_group(process, name)
        self.processes.clear()
        if self.redis_db is not None:
            redis.Redis(REDIS_HOST, REDIS_PORT, db=self.redis_db).flushdb()
            self.redis_db = None
        self._drop_database()
        server = getattr(self, "s3_server", None)
        if server is not None:
            self._made["groups"].append(server.pid)
            _stop_group(server, "s3")
            self.s3_server = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What stop() failed to remove: live process groups, the database, Redis keys, files."""
        found = []
        for group in self._made["groups"]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, 0)
                found.append(f"process group {group}")
        with contextlib.closing(_postgres()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if cur.fetchone():
                found.append(f"database {self.database}")
        db = self._made["redis_db"]
        if db is not None and redis.Redis(REDIS_HOST, REDIS_PORT, db=db).dbsize():
            found.append(f"keys in Redis DB {db}")
        if self.workdir.exists():
            found.append(str(self.workdir))
        return found

    # -- pieces ----------------------------------------------------------------

    def _start_s3(self) -> None:
        ready = self.workdir / "s3.port"
        self.s3_server = subprocess.Popen(
            [sys.executable, str(REPO / "tests/support/s3server.py"), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text()):
            if time.monotonic() > deadline or self.s3_server.poll() is not None:
                raise RuntimeError("the S3 server did not start")
            time.sleep(0.05)
        self.s3_endpoint = f"http://127.0.0.1:{ready.read_text()}"
        aws = {
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": "e2e",
            "AWS_SECRET_ACCESS_KEY": "e2e",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.env.update(aws)
        session = boto3.session.Session(
            aws_access_key_id="e2e", aws_secret_access_key="e2e", region_name="us-east-1"
        )
        self.s3 = session.client("s3", endpoint_url=self.s3_endpoint)
        self.s3.create_bucket(Bucket=BUCKET)
        self.secretsmanager = session.client("secretsmanager", endpoint_url=self.s3_endpoint)

    def _start_versioned_sidecar(self) -> None:
        """The versioned bundle's sidecar, collecting eagerly (keep 1, no grace) but never a
        release the metadata DB says is in use. A first release is live before Airflow starts,
        as the ECS init container (`s3sync sync --once`) makes sure."""
        first = self.workdir / "versioned-first"
        first.mkdir()
        (first / "README.md").write_text("DAGs of the versioned bundle\n")
        self.publish(first, VERSIONED_URL)
        target = ["--source", VERSIONED_URL, "--target", str(self.versioned_root)]
        self.s3sync("sync", "--once", *target, "--timeout", "60")
        retention = ["--keep", "1", "--grace", "0", "--gc-interval", "2", "--bundle-name", VERSIONED_BUNDLE]
        status = ["--status-file", str(self.workdir / "s3sync-versioned-status.json"), "--interval", "2"]
        self._spawn(
            "s3sync-versioned",
            [str(BIN / "s3sync"), "run", *target, *retention, *status],
            {"S3SYNC_IN_USE_DATABASE": self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]},
        )

    def bundle_storage(self, name: str) -> Path:
        """Each Airflow process keeps bundle versions on its own "local disk", as on ECS."""
        return self.workdir / "bundles" / name

    def _create_database(self) -> None:
        with contextlib.closing(_postgres()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        self._database_created = True

    def _drop_database(self) -> None:
        if not getattr(self, "_database_created", False):
            return
        with contextlib.closing(_postgres()) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.database,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{self.database}"')
        self._database_created = False

    def _claim_redis_db(self) -> None:
        """An empty Redis DB (1-15), claimed with a marker key so two runs never share one."""
        claim = f"airflow-e2e-claim:{self.database}"
        for number in range(15, 0, -1):
            client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
            if client.dbsize() == 0 and client.set(claim, "1", nx=True) and client.dbsize() == 1:
                self.redis_db = number
                return
        raise RuntimeError("no empty Redis database (1-15) to use")

    def _write_home(self) -> None:
        self.home.mkdir(parents=True)
        shutil.copy(REPO / "config/airflow/airflow.cfg", self.home / "airflow.cfg")
        (self.home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        sql = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.database}"
        self.env.update(read_env_file(REPO / "config/airflow/airflow.env"))
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                # where the sidecar keeps its status, and where `s3sync health` and the probe read it
                "S3SYNC_STATUS_FILE": str(self.workdir / "s3sync-status.json"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.root / "current"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql}",
                "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/logs",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.health_port),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__TRIGGERER__TRIGGERER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW_WORKER_LIVENESS_FILE": str(self.workdir / "worker-alive"),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(self.bundles()),
                # Airflow's stale-version cleanup, every 3 s, on copies unused for 1 s
                "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_INTERVAL": "3",
                "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_AGE_THRESHOLD": "1",
                "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_MIN_VERSIONS": "0",
            }
        )

    def bundles(self, *extra: dict) -> list[dict]:
        """Plain mode (dags_folder) and the versioned bundle, side by side."""
        plain = {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
        versioned_kwargs = {"root": str(self.versioned_root), "source": VERSIONED_URL}
        return [
            {**plain, "kwargs": {}},
            {
                "name": VERSIONED_BUNDLE,
                "classpath": "s3sync.airflow_bundle.ReleaseBundle",
                "kwargs": versioned_kwargs,
            },
            *extra,
        ]

    def _migrate(self) -> None:
        result = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )

    def process_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        return {**base, **self.env}

    def signal(self, name: str, signum: int) -> None:
        """Send `signum` to a component's whole process group (SIGSTOP freezes it, SIGCONT thaws)."""
        os.killpg(self.processes[name].pid, signum)

    def restart(self, name: str) -> None:
        _stop_group(self.processes[name], name)
        self._spawn(name, self.commands[name], self.spawn_env.get(name))

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.commands[name] = command
        self.spawn_env[name] = env
        storage = {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.bundle_storage(name))}
        with open(self.logs / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                env={**self.process_env(), **storage, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_as_other_host(self, name: str, role: str, hostname: str) -> None:
        """Another copy of `role` that registers as `hostname`, as if on another ECS task."""
        env = {
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.fakehost.name",
            "E2E_FAKE_HOSTNAME": hostname,
            "PYTHONPATH": str(REPO),
        }
        self._spawn(name, [str(BIN / "airflow"), *ROLES[role]], env)

    def start_with_env(self, role: str, env: dict[str, str]) -> None:
        """(Re)start a stopped component of the stack with some settings overridden."""
        self._spawn(role, [str(BIN / "airflow"), *ROLES[role]], env)

    def start_extra(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """One more Airflow process, e.g. a second Celery worker; stopped with the stack."""
        self._spawn(name, [str(BIN / "airflow"), *args], env)

    def stop_process(self, name: str) -> None:
        _stop_group(self.processes.pop(name), name)

    # -- talking to it -------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def wait_for_api(self, timeout: float = 240) -> None:
        self.wait_for_url(f"{self.api_url}/api/v2/monitor/health", "api-server", timeout)

    def wait_for_url(self, url: str, name: str, timeout: float, step: float = 1) -> None:
        """Until `url` answers 2xx; RuntimeError with `name`'s log if it does not, or a process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_processes()
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(step)
        raise RuntimeError(f"{name} did not answer at {url} in {timeout:g}s\n{self.log_tail(name)}")

    def check_processes(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}\n{self.log_tail(name)}")

    def log_tail(self, name: str, size: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def db(self):
        return psycopg2.connect(dbname=self.database, **POSTGRES)

    def publish(self, folder: Path, destination: str = DAGS_URL) -> str:
        return self.s3sync("publish", str(folder), destination)

    def s3sync(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one s3sync command against the stack's S3; its stdout, or RuntimeError."""
        result = subprocess.run(
            [str(BIN / "s3sync"), *args],
            env={**self.process_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"s3sync {args[0]} failed: {result.stderr}")
        return result.stdout


def _postgres():
    conn = psycopg2.connect(dbname="postgres", **POSTGRES)
    conn.autocommit = True
    return conn


def _stop_group(process: subprocess.Popen, name: str, grace: float = 20) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):  # children that outlived their leader
            os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    stack = LocalStack()
    print(f"starting in {stack.workdir} ...", flush=True)
    stack.start()
    print(f"api-server  {stack.api_url}  (admin / {stack.password})")
    print(
        f"S3          {stack.s3_endpoint}  publish with: AWS_ENDPOINT_URL={stack.s3_endpoint} "
        f"AWS_ACCESS_KEY_ID=e2e AWS_SECRET_ACCESS_KEY=e2e s3sync publish DIR {DAGS_URL}"
    )
    print(f"logs        {stack.logs}\nCtrl-C stops everything and removes what it made.", flush=True)
    try:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
        while True:
            stack.check_processes()
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
