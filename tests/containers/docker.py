"""The Docker CLI for the container tier: images built from this checkout, containers labelled.

DOCKER names the client (default docker). No engine is a failure, never a skip.
"""

import json
import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("DOCKER", "docker")
AIRFLOW_IMAGE = "airflow-ecs/airflow:local"
S3SYNC_IMAGE = "airflow-ecs/s3sync:local"
LABEL = "airflow-ecs-test"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"docker {' '.join(args[:3])} failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return result


def build_images() -> str:
    """scripts/build-images: both images from the real Dockerfiles; returns its report."""
    result = subprocess.run(
        [str(REPO / "scripts/build-images")],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "DOCKER": DOCKER},
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/build-images failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return result.stdout


def run(
    image: str,
    *command: str,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    label: str = LABEL,
    timeout=120,
):
    """A one-off container, removed afterwards: (exit code, stdout, stderr, seconds)."""
    network = () if "--network" in options else ("--network", "host")
    args = ["run", "--rm", *network, "--label", label, *options, *env_args(env or {})]
    started = time.monotonic()
    result = docker(*args, image, *command, timeout=timeout, check=False)
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]


def state(name: str) -> dict:
    return json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)


def remove_labelled(value: str) -> None:
    names = labelled(value)
    if names:
        docker("rm", "-f", *names, timeout=120)


def labelled(value: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label={LABEL}={value}").stdout.split()
