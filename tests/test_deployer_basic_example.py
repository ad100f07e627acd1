"""The reference's basic example, verbatim but for the import, on a machine with nothing set.

"Basic deployment with bake_image and package_code" (apps-api-reference.txt): no
BAKERY_REGISTRY, no BAKERY_BASE_IMAGE, no BAKERY_RUNTIME; fresh data, cache and state
directories. So `bake_image` uses the embedded default base and publishes to the default
OCI layout, `package_code` stores into the default code store, and `deploy()` runs on the
default runtime, docker (an engine answers), which must load the layout image itself.

The embedded default base is found where `bakery.base.default` looks for it, in the fresh
layout; it is put there from the fixtures' per-machine cache of the same mmdebstrap build
(`build_debian_base`, bookworm, linux/amd64), which is what the first bake on a fresh
machine would build, so the test does not run mmdebstrap every time.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from bakery import config as bakery_config
from bakery.base.default import default_base_tag
from bakery.oci.layout import LAYOUT_SCHEME, LayoutPublisher
from bakery.oci.model import Image
from deployer.model.images import image_location
from deployer.runtimes.docker.images import engine_image
from tests.fixtures.base_image import PLATFORM

SERVER = """\
import os

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello from the basic example\\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))
"""
UNSET = (
    "BAKERY_REGISTRY",
    "BAKERY_BASE_IMAGE",
    "BAKERY_IMAGE_LAYOUT",
    "BAKERY_RUNTIME",
    "BAKERY_CODE_STORE",
    "BAKERY_PLATFORM",
)


def loads_of(client: docker.DockerClient, image_id: str, *, since: float) -> int:
    """How often the engine loaded `image_id` since then (other tests share the engine)."""
    events = client.events(since=since, until=time.time(), filters={"event": "load"}, decode=True)
    return sum(event["id"] == image_id for event in events)


@pytest.fixture
def fresh_machine(tmp_path, monkeypatch, debian_base: Image, docker_engine) -> Iterator[Path]:
    """Nothing configured, every Bakery directory new, the default base in place, and a
    working directory holding ./src/server.py; the example's app is deleted afterwards."""
    for variable in UNSET:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAKERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the daemon publisher's
    LayoutPublisher(bakery_config.image_layout_dir()).publish(
        debian_base, default_base_tag(PLATFORM)
    )
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "server.py").write_text(SERVER)
    monkeypatch.chdir(work)
    yield work
    from deployer import AppDeployer

    for runtime in ("docker", "process"):
        for app in AppDeployer.list_deployments(name="my-flask-app", runtime=runtime):
            app.delete()


def test_the_basic_example_runs_with_nothing_configured(fresh_machine):
    from deployer import AppDeployer, bake_image, package_code

    client = docker.from_env()
    started = time.time()

    # Step 1: Bake dependencies into an image
    baked = bake_image(pypi={"flask": ">=2.0", "requests": ""})

    # Step 2: Package your application code
    pkg = package_code(src_paths=["./src"])

    # Step 3: Create deployer and deploy
    deployer = AppDeployer(
        name="my-flask-app",
        port=8000,
        image=baked.image,
        code_package=pkg,
        commands=["python server.py"],
        replicas={"min": 1, "max": 3},
        resources={"cpu": "1", "memory": "2048Mi"},
    )
    deployed = deployer.deploy()
    print(deployed.public_url)

    assert baked.image.startswith(f"{LAYOUT_SCHEME}{fresh_machine.parent / 'data' / 'images'}@")
    assert deployed.info()["runtime"] == "docker"
    response = httpx.get(deployed.public_url, timeout=10)
    assert (response.status_code, response.text) == (200, "hello from the basic example\n")

    # the layout image was loaded into the engine, once; using it again loads nothing
    [replica] = deployed.replicas()
    running = client.containers.get(replica["workerId"]).image.id
    assert loads_of(client, running, since=started) == 1
    since = time.time()
    assert engine_image(baked.image, client) == running
    assert loads_of(client, running, since=since) == 0

    deployed.delete()
    assert AppDeployer.list_deployments(name="my-flask-app") == []
    assert client.containers.list(all=True, filters={"label": "bakery.app=my-flask-app"}) == []


def test_an_image_baked_into_the_engine_runs_on_docker_and_as_processes(fresh_machine):
    """bake_image(target="daemon") gives an engine image ID: docker runs it as it is, the
    process runtime reads its layers through the manifest bakery kept."""
    from deployer import AppDeployer, bake_image, package_code

    baked = bake_image(pypi={"flask": ">=2.0"}, target="daemon")
    assert image_location(baked.image) == "engine"
    pkg = package_code(src_paths=["./src"])
    for runtime in ("docker", "process"):
        deployed = AppDeployer(
            runtime=runtime,
            name="my-flask-app",
            port=8000,
            image=baked.image,
            code_package=pkg,
            commands=["python server.py"],
        ).deploy(readiness_wait_time=0.2, max_wait_time=120, logger_fn=lambda _: None)
        response = httpx.get(deployed.public_url, timeout=10)
        assert (runtime, response.text) == (runtime, "hello from the basic example\n")
        deployed.delete()
