"""Conda over the service: a remote conda bake gives the image a local one gives, and Fast
Bakery's condaMatchspecs / condaChannels / defaultCondaChannel bake a conda env (with its
pipRequirements on top). The test channel's real packages, the test registry."""

import subprocess
import sys
from pathlib import Path

import httpx

from bakery.bake import bake_image
from bakery.inspect import read_lock
from frontends.service.server import ServerSettings, start

PREFIX = "/opt/bakery/env"


def test_a_remote_conda_bake_is_the_local_bake(server_repo, registry, conda_channel, tmp_path):
    conda = {"python": "", "libdemo": "1.0", "demo-cli": ""}
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state"))
    try:
        remote = bake_image(
            conda=conda, channels=[conda_channel.url], service=f"grpc://127.0.0.1:{running.port}"
        )
    finally:
        running.stop(grace=1)
    local_repo = f"{registry.host}/{registry.fresh_repo('local-conda')}"
    local = bake_image(conda=conda, channels=[conda_channel.url], registry=local_repo)
    assert remote.image.startswith(f"{server_repo[0]}@sha256:")
    assert remote.image.split("@")[1] == local.image.split("@")[1]
    assert remote.python_path == f"{PREFIX}/bin/python"
    assert [p.name for p in read_lock(remote.image).conda] == ["demo-cli", "libdemo", "python"]


def test_fast_bakery_conda_matchspecs_bake_a_conda_env(
    server_repo, registry, conda_channel, docker_engine, tmp_path
):
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", http_port=0))
    body = {
        "perimeterName": "default",
        "pythonVersion": None,
        "condaMatchspecs": ["python", "libdemo>=1.0", "demo-cli"],
        "condaChannels": [],
        "defaultCondaChannel": conda_channel.url,
        "pipRequirements": ["idna>=3"],
        "baseImage": {"imageReference": None},
        "imageKind": "oci-gzip",
    }
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}", timeout=600) as web:
            first, second = (web.post("/api/v1/bake", json=body) for _ in range(2))
            bad = web.post("/api/v1/bake", json={**body, "condaMatchspecs": ["libdemo", "libdemo"]})
    finally:
        running.stop(grace=1)
    assert first.status_code == 200, first.text
    success = first.json()["success"]
    assert second.json()["success"]["containerImage"] == success["containerImage"]
    assert success["pythonPath"] == f"{PREFIX}/bin/python"
    assert success["bakingStats"]["solverStats"]["packagesInSolvedEnvironment"] == 4
    lock = read_lock(success["containerImage"])
    assert [p.name for p in lock.conda] == ["demo-cli", "libdemo", "python"]
    assert [p.name for p in lock.packages] == ["idna"]
    assert running.service.builds_started == 1
    assert bad.status_code == 400 and "twice" in bad.json()["error"]["details"]["message"]

    image = success["containerImage"]
    pulled = subprocess.run(["docker", "pull", "-q", image], capture_output=True)
    assert pulled.returncode == 0, pulled.stderr
    script = "import demo_cli, idna; print(demo_cli.__name__, idna.__name__)"
    ran = subprocess.run(
        ["docker", "run", "--rm", image, success["pythonPath"], "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.stdout == "demo_cli idna\n", ran.stderr


def test_environment_and_conda_lock_files_travel_with_a_remote_bake(
    server_repo, registry, conda_channel, tmp_path
):
    """The client reads an environment.yml and a conda-lock file and sends their contents: the
    server (which cannot see the client's files) bakes what a local bake of them bakes."""
    environment = tmp_path / "environment.yml"
    environment.write_text(
        f"name: demo\nchannels: [{conda_channel.url}]\ndependencies: [python, libdemo]\n"
    )
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state"))
    url = f"grpc://127.0.0.1:{running.port}"
    try:
        remote = bake_image(environment=str(environment), service=url)
        lockfile = tmp_path / "conda-lock.yml"
        subprocess.run(
            [str(Path(sys.executable).parent / "bakery"), "inspect", "--conda-lock", remote.image],
            stdout=lockfile.open("w"),
            check=True,
        )
        relocked = bake_image(conda_lock=str(lockfile), service=url)
    finally:
        running.stop(grace=1)
    local = bake_image(
        environment=str(environment),
        registry=f"{registry.host}/{registry.fresh_repo('local-env')}",
    )
    assert remote.image.split("@")[1] == local.image.split("@")[1]
    assert relocked.image == remote.image  # the lockfile's bake is the same image
