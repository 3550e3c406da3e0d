"""docker-compose.yml, run as a newcomer would: on a clean copy of this checkout.

The copy holds only the files git would check out (tracked, or new and not ignored), under
a project name and UI port of its own, so it never meets another stack on this engine.
`DOCKER compose` must be Compose v2 (>= 2.24: optional env files); when the client has no
compose plugin, the `docker-compose` binary of the test extras is made its plugin.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from entrypoint.envfile import read_env_file
from tests.containers.docker import DOCKER, REPO, docker
from tests.e2e.stack import free_port
from tests.support.airflow_api import AirflowApi

MIN_COMPOSE = (2, 24)
ONE_OFF = ("aws-init", "db-migrate", "welcome")
LONG_RUNNING = (
    "postgres",
    "redis",
    "aws",
    "publisher",
    "s3sync",
    "api-server",
    "scheduler",
    "dag-processor",
    "triggerer",
    "worker",
)
UNCHECKED = ("publisher",)  # no health check of its own
PROJECT_LABEL = "com.docker.compose.project"


def compose_cli_env(plugin_dir: Path) -> dict[str, str]:
    """os.environ, plus DOCKER_CONFIG pointing at a plugin folder if the client lacks compose."""
    env = dict(os.environ)
    if _compose_version(env) is None:
        binary = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
        if binary is None:
            raise RuntimeError(f"{DOCKER} has no compose plugin and no docker-compose is installed")
        (plugin_dir / "cli-plugins").mkdir(parents=True, exist_ok=True)
        (plugin_dir / "cli-plugins/docker-compose").symlink_to(binary)
        env["DOCKER_CONFIG"] = str(plugin_dir)
    version = _compose_version(env)
    if version is None or version < MIN_COMPOSE:
        raise RuntimeError(f"Compose v2 >= {'.'.join(map(str, MIN_COMPOSE))} is needed, found {version}")
    return env


def _compose_version(env: dict[str, str]) -> tuple[int, ...] | None:
    result = subprocess.run(
        [DOCKER, "compose", "version", "--short"], capture_output=True, text=True, env=env, timeout=30
    )
    if result.returncode != 0:
        return None
    return tuple(int(part) for part in result.stdout.strip().lstrip("v").split("-")[0].split(".")[:2])


def clean_checkout(target: Path) -> Path:
    """The files a clone of this checkout would hold, as they are now in the work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


class ComposeProject:
    def __init__(self, cli_env: dict[str, str]):
        self.dir = clean_checkout(Path(tempfile.mkdtemp(prefix="afe-compose-")))
        self.name = f"afe-{secrets.token_hex(4)}"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        ca = os.environ.get("BUILD_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        self.env = {**cli_env, "AIRFLOW_UI_PORT": str(self.port)}
        if ca and os.path.isfile(ca):
            self.env["BUILD_CA_BUNDLE"] = ca
        login = read_env_file(self.dir / ".env.example")
        self._api = AirflowApi(self.api_url, login["AIRFLOW_ADMIN_USERNAME"], login["AIRFLOW_ADMIN_PASSWORD"])

    @property
    def dags(self) -> Path:
        return self.dir / "dags"

    def command(self, *args: str) -> list[str]:
        return [DOCKER, "compose", "-p", self.name, "--project-directory", str(self.dir), *args]

    def compose(self, *args: str, timeout: float = 120, check: bool = True, env=None):
        env = env or self.env
        result = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result

    def services(self) -> dict[str, dict]:
        """`docker compose ps -a`, by service."""
        out = self.compose("ps", "-a", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):  # older Compose prints one array
            rows = rows[0]
        return {row["Service"]: row for row in rows}

    def container(self, service: str) -> str:
        return self.compose("ps", "-a", "-q", service).stdout.strip()

    def inspect(self, service: str) -> dict:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]

    def exec(self, service: str, *command: str) -> str:
        return self.compose("exec", "-T", service, *command).stdout

    def live_release(self, service: str = "scheduler") -> str:
        """The release `current` names, as an Airflow container sees the DAG volume."""
        return self.exec(service, "readlink", "/opt/airflow/dags-root/current").strip()

    def logs(self, *services: str, size: int = 4000) -> str:
        result = self.compose("logs", "--no-color", *services, check=False)
        return (result.stdout + result.stderr)[-size:]

    def api(self, method: str, path: str, body: dict | None = None):
        """The REST API as the UI login of .env.example; None for a 404."""
        return self._api(method, path, body, missing_ok=True)

    # -- cleanup -----------------------------------------------------------------------

    def down(self) -> float:
        started = time.monotonic()
        # Every profile: a plain `down` leaves the services of profiles it was not given.
        self.compose("--profile", "*", "down", "-v", "--remove-orphans", "--timeout", "150", timeout=300)
        return time.monotonic() - started

    def leftovers(self) -> list[str]:
        label = f"label={PROJECT_LABEL}={self.name}"
        found = []
        for kind, command in (
            ("container", ("ps", "-aq")),
            ("volume", ("volume", "ls", "-q")),
            ("network", ("network", "ls", "-q")),
        ):
            found += [f"{kind} {ident}" for ident in docker(*command, "--filter", label).stdout.split()]
        return found

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
