"""The container tier: both images built from this checkout, run on a real Docker engine."""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.containers.compose import ComposeProject, compose_cli_env
from tests.containers.docker import DOCKER, build_images, docker
from tests.containers.stack import ContainerStack
from tests.e2e.stack import free_port


@pytest.fixture(scope="session")
def images() -> str:
    """Builds both images (cached layers are reused); fails, never skips, without an engine."""
    docker("version", timeout=30)
    return build_images()


@pytest.fixture(scope="session")
def stack(images):
    running = ContainerStack().start()
    try:
        yield running
    finally:
        running.stop()
    assert running.leftovers() == []


class PasswordPostgres:
    """A PostgreSQL server of our own on a loopback port that checks passwords (scram-sha-256),
    from the machine's PostgreSQL binaries; the shared server trusts every local connection."""

    def __init__(self):
        self.bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.folder = Path(tempfile.mkdtemp(prefix="pg-password-"))
        self.port = free_port()
        self.password = "superuser-password"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> "PasswordPostgres":
        (self.folder / "pw").write_text(self.password)
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.folder / "pw", "postgres")
        data = self.folder / "data"
        self._pg(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={self.folder}/pw"
        )
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._pg("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        return self

    def sql(self, statement: str) -> None:
        env = {**os.environ, "PGPASSWORD": self.password}
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
            ],
            check=True,
            capture_output=True,
            env=env,
            timeout=30,
        )

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bindir / tool), *args], check=True, capture_output=True, timeout=120
        )


@pytest.fixture(scope="session")
def password_postgres():
    server = PasswordPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def compose_project(images, tmp_path_factory):
    """A clean copy of this checkout whose third-party images exist (pulled, or stand-ins).
    Torn down with `docker compose down -v`; nothing of it may be left."""
    project = ComposeProject(compose_cli_env(tmp_path_factory.mktemp("docker-config")))
    try:
        result = subprocess.run(
            [str(project.dir / "scripts/third-party-images")],
            capture_output=True,
            text=True,
            timeout=1200,
            env={**project.env, "DOCKER": DOCKER},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        print(f"\n{result.stdout.strip()}")
        yield project
    finally:
        project.down()
        project.remove()
    assert project.leftovers() == []
