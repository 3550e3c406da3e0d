"""Both images as built: version, user, no way to install at runtime, no secret in a layer."""

import io
import json
import os
import secrets
import subprocess
import tarfile
import tempfile

import pytest

from tests.containers.docker import AIRFLOW_IMAGE, DOCKER, REPO, S3SYNC_IMAGE, docker, run

pytestmark = pytest.mark.container


def test_airflow_version_is_the_pinned_one(images):
    code, out, err, _ = run(AIRFLOW_IMAGE, "airflow", "version", options=("--network", "none"))
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "3.1.8"


@pytest.mark.parametrize("image", [AIRFLOW_IMAGE, S3SYNC_IMAGE])
def test_runs_as_uid_50000_gid_0(images, image):
    code, out, err, _ = run(image, options=("--entrypoint", "id"))
    assert code == 0, err
    assert out.startswith("uid=50000(") and " gid=0(root)" in out, out
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["User"] == "50000:0"


@pytest.mark.parametrize("image", [AIRFLOW_IMAGE, S3SYNC_IMAGE])
def test_nothing_can_be_installed_at_runtime(images, image):
    script = "pip --version; python3 -m pip --version; python3 -m ensurepip --version; pip3 --version"
    _code, _out, err, _ = run(image, "-c", script, options=("--network", "none", "--entrypoint", "bash"))
    assert "pip: command not found" in err and "pip3: command not found" in err, err
    assert err.count("No module named pip") == 1 and "No module named ensurepip" in err, err


def test_entrypoint_and_sidecar_start_without_network(images):
    """Nothing is fetched at start: the entrypoint and the sidecar load offline, read-only."""
    script = "s3sync --version && airflow-entrypoint help >/dev/null && echo ok"
    code, out, err, _ = run(AIRFLOW_IMAGE, "bash", "-c", script, options=("--network", "none", "--read-only"))
    assert code == 0 and out.strip().endswith("ok"), err


def test_s3sync_image_runs_the_sidecar(images):
    code, out, err, _ = run(S3SYNC_IMAGE, "--version", options=("--network", "none", "--read-only"))
    assert code == 0 and out.strip(), err
    code, out, err, _ = run(S3SYNC_IMAGE, "run", options=("--network", "none", "--read-only"))
    assert code == 2 and "--source" in err, (code, err)


def test_no_secret_in_any_layer_or_history(images):
    """Build with a canary appended to the BuildKit CA secret (no cache, so it is really used),
    and look for it, and for the secrets the tests pass at run time, in every layer and in the
    image's history and config."""
    canary = f"canary-{secrets.token_hex(12)}"
    runtime_secrets = ["trust-auth-ignores-it", "superuser-password"]
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as bundle:
        with open("/etc/ssl/certs/ca-certificates.crt") as system:
            bundle.write(system.read())
        bundle.write(f"\n# {canary}\n")
        bundle.flush()
        tag = f"airflow-ecs/airflow:scan-{secrets.token_hex(3)}"
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        build = [DOCKER, "build", "--no-cache", "--secret", f"id=ca,src={bundle.name}"]
        build += ["-f", "images/airflow/Dockerfile", "-t", tag, "."]
        result = subprocess.run(build, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stderr[-3000:]
    try:
        found = scan_image(tag, [canary, *runtime_secrets])
    finally:
        docker("rmi", "-f", tag)
    assert found == [], found


def scan_image(tag: str, needles: list[str]) -> list[str]:
    """Where any needle occurs: `docker save`'s layers (every file, unpacked) and metadata."""
    encoded = [needle.encode() for needle in needles]
    found = []
    history = docker("history", "--no-trunc", tag).stdout + docker("image", "inspect", tag).stdout
    found += [f"history/config: {n}" for n in needles if n in history]
    saved = subprocess.run([DOCKER, "save", tag], capture_output=True, timeout=600, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:  # layers are plain tars: search the bytes
        for member in outer.getmembers():
            if member.isfile():
                data = outer.extractfile(member).read()
                found += [f"{member.name}: {n.decode()}" for n in encoded if n in data]
    return found
