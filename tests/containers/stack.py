"""The Airflow stack as containers of our images, on the machine's Postgres and Redis.

The same pieces as tests/e2e/stack.py (moto's S3 + Secrets Manager on loopback, a fresh
database, an empty Redis DB), but every component is a container of the built images:
the s3sync sidecar pulls published releases into a folder mounted read-only into the
Airflow containers, db-migrate migrates, and each role runs with a read-only root
filesystem (/tmp and /opt/airflow/logs are tmpfs). Containers share the host network,
so they reach only loopback. stop() removes every container, then the rest.
"""

import secrets
import time
from pathlib import Path

from cryptography.fernet import Fernet

from tests.containers.docker import (
    AIRFLOW_IMAGE,
    LABEL,
    S3SYNC_IMAGE,
    docker,
    env_args,
    labelled,
    remove_labelled,
    run,
    state,
)
from tests.e2e.stack import BUCKET, DAGS_URL, REDIS_HOST, REDIS_PORT, LocalStack, free_port

ROLES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")
READ_ONLY = ("--read-only", "--tmpfs", "/tmp:mode=1777", "--tmpfs", "/opt/airflow/logs:mode=1777")
HEALTH = ("--health-interval", "2s", "--health-timeout", "10s", "--health-retries", "3")
DAGS_MOUNT = "/opt/airflow/dags-root"


class ContainerStack(LocalStack):
    def __init__(self):
        super().__init__()
        self.tag = secrets.token_hex(4)
        self.started_at: dict[str, float] = {}
        self.healthy_after: dict[str, float] = {}

    def name(self, role: str) -> str:
        return f"afe-{self.tag}-{role}"

    def start(self) -> "ContainerStack":
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            self.root.mkdir(parents=True)
            self.root.chmod(0o777)  # the sidecar writes as uid 50000
            self._start_s3()
            self._create_database()
            self._claim_redis_db()
            self.env = self.container_env()
        except BaseException:
            self.stop()
            raise
        return self

    def container_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": "e2e",
            "AWS_SECRET_ACCESS_KEY": "e2e",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            # the parts ECS injects from Secrets Manager; the entrypoint builds the URLs
            "AIRFLOW_DB_HOST": "127.0.0.1",
            "AIRFLOW_DB_NAME": self.database,
            "AIRFLOW_DB_USER": "postgres",
            "AIRFLOW_DB_PASSWORD": "trust-auth-ignores-it",
            "AIRFLOW_DB_SSLMODE": "disable",
            "AIRFLOW_REDIS_HOST": REDIS_HOST,
            "AIRFLOW_REDIS_PORT": str(REDIS_PORT),
            "AIRFLOW_REDIS_DB": str(self.redis_db),
            "AIRFLOW_REDIS_TLS": "false",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/logs",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.health_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__TRIGGERER__TRIGGERER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        }

    # -- containers ----------------------------------------------------------------

    def run_once(self, *command: str, env: dict[str, str] | None = None, timeout: float = 600):
        """A one-off container of the Airflow image on this stack: (exit code, stdout, stderr)."""
        env = {**self.env, **(env or {})}
        label = f"{LABEL}={self.tag}"
        code, out, err, _ = run(
            AIRFLOW_IMAGE, *command, env=env, options=READ_ONLY, label=label, timeout=timeout
        )
        return code, out, err

    def start_sidecar(self) -> None:
        aws = {k: v for k, v in self.env.items() if k.startswith("AWS_")}
        self._run_detached(
            "s3sync",
            S3SYNC_IMAGE,
            ["run", "--source", DAGS_URL, "--target", DAGS_MOUNT, "--interval", "2"],
            aws,
            ("-v", f"{self.root}:{DAGS_MOUNT}", "--read-only", "--tmpfs", "/tmp:mode=1777"),
        )

    def start_role(self, role: str, env: dict[str, str] | None = None) -> None:
        self._run_detached(
            role,
            AIRFLOW_IMAGE,
            [role],
            {**self.env, **(env or {})},
            (*READ_ONLY, "-v", f"{self.root}:{DAGS_MOUNT}:ro"),
        )

    def _run_detached(self, role, image, command, env, options) -> None:
        args = ["run", "-d", "--name", self.name(role), "--network", "host", "--label", f"{LABEL}={self.tag}"]
        self.started_at[role] = time.monotonic()
        docker(*args, *env_args(env), *HEALTH, *options, image, *command)

    def wait_healthy(self, roles, timeout: float = 300) -> dict[str, float]:
        """Seconds from `docker run` to healthy, per role; a role that exits or stays unhealthy fails."""
        pending = set(roles)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for role in sorted(pending):
                current = state(self.name(role))
                if not current["Running"]:
                    raise RuntimeError(
                        f"{role} exited with {current['ExitCode']}:\n{self.container_log(role)}"
                    )
                if current.get("Health", {}).get("Status") == "healthy":
                    self.healthy_after[role] = time.monotonic() - self.started_at[role]
                    pending.discard(role)
            time.sleep(0.5)
        if pending:
            details = "\n".join(f"--- {r}\n{self.container_log(r)}" for r in sorted(pending))
            raise RuntimeError(f"not healthy within {timeout:g}s: {sorted(pending)}\n{details}")
        return {role: self.healthy_after[role] for role in roles}

    def container_log(self, role: str, size: int = 3000) -> str:
        result = docker("logs", self.name(role), check=False)
        return (result.stdout + result.stderr)[-size:]

    # -- cleanup -------------------------------------------------------------------

    def stop(self) -> None:
        remove_labelled(self.tag)
        super().stop()

    def leftovers(self) -> list[str]:
        return [*super().leftovers(), *(f"container {c}" for c in labelled(self.tag))]


def published_tree(root: Path) -> set[str]:
    current = root / "current"
    return {str(p.relative_to(current)) for p in current.rglob("*.py")} if current.exists() else set()
