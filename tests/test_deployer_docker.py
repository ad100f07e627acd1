"""The docker runtime end to end: a baked image, a code package, real containers."""

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bakery.bake import bake_image
from deployer import AppDeployer
from deployer.exceptions import AppCrashLoopException, AppReadinessException
from deployer.runtimes.docker import DockerRuntime
from packager import PackagedCode, package_code

HELLO_APP = Path(__file__).parent.parent / "examples" / "hello-app"
FAST = {"max_wait_time": 30, "readiness_wait_time": 0.2, "logger_fn": lambda _: None}


@dataclass(frozen=True)
class HelloBuild:
    image: str
    code: PackagedCode


@pytest.fixture(scope="module")
def hello_build(
    tmp_path_factory, registry_service, pushed_debian_base, docker_engine
) -> Iterator[HelloBuild]:
    """hello-app's code packaged into a local store, run on an image baked with `six`.

    The deployer's code cache (BAKERY_CACHE_DIR) stays set for the module, so it is fresh.
    """
    root = tmp_path_factory.mktemp("deployer")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BAKERY_CACHE_DIR", str(root / "cache"))
        patch.setenv("BAKERY_IMAGE_LAYOUT", str(root / "layout"))
        patch.setenv("BAKERY_BASE_IMAGE", pushed_debian_base)
        patch.delenv("BAKERY_REGISTRY", raising=False)
        repo = registry_service.fresh_repo("deployed")
        baked = bake_image(pypi={"six": ""}, registry=f"{registry_service.host}/{repo}")
        code = package_code([str(HELLO_APP)], store=str(root / "store"))
        yield HelloBuild(baked.image, code)


@pytest.fixture
def app_name() -> Iterator[str]:
    """A unique app name; its containers are removed even when the test fails."""
    name = f"hello-{uuid.uuid4().hex[:8]}"
    yield name
    DockerRuntime().delete(name)


def deployer(build: HelloBuild, name: str, commands: list[str]) -> AppDeployer:
    return AppDeployer(
        name=name,
        port=8000,
        image=build.image,
        code_package=build.code,
        commands=commands,
        replicas={"fixed": 1},
        tags=[{"suite": "docker"}],
        resources={"cpu": "500m", "memory": "256Mi", "shared_memory": "64Mi"},
    )


def test_deploy_serves_hello_and_has_logs_then_delete_removes_it(hello_build, app_name):
    app = deployer(hello_build, app_name, ["python server.py"]).deploy(**FAST)

    assert app.public_url is not None
    response = httpx.get(app.public_url, timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("hello from ")
    logs = app.logs()
    assert len(logs) == 1
    assert any('"GET / HTTP/1.1" 200' in line for line in next(iter(logs.values())))
    assert AppDeployer.get(app_name).deployed_version == app.deployed_version
    limits = json.loads(
        subprocess.run(
            ["docker", "inspect", app.replicas()[0].container_id],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]["HostConfig"]
    assert (limits["NanoCpus"], limits["Memory"], limits["ShmSize"]) == (
        500_000_000,
        256 * 2**20,
        64 * 2**20,
    )

    # an unchanged config is a no-op: same version, same container
    before = [r.container_id for r in app.replicas()]
    again = deployer(hello_build, app_name, ["python server.py"]).deploy(**FAST)
    assert again.deployed_version == app.deployed_version
    assert [r.container_id for r in again.replicas()] == before

    app.delete()
    assert app.replicas() == []
    assert DockerRuntime().snapshot(app_name) is None


def test_command_that_exits_at_once_is_a_crash_loop_with_its_logs(hello_build, app_name):
    commands = ["echo starting up", "echo no such module >&2", "exit 3"]
    with pytest.raises(AppCrashLoopException) as caught:
        deployer(hello_build, app_name, commands).deploy(**FAST)

    error = caught.value
    assert error.worker_id.startswith(f"bakery-{app_name}-")
    # stdout and stderr both arrive; their relative order is the engine's best effort
    assert sorted(error.logs) == ["no such module", "starting up"]
    assert error.deployed_app is not None
    assert sorted(error.deployed_app.logs()[error.worker_id]) == sorted(error.logs)


def test_port_that_never_opens_is_a_readiness_failure(hello_build, app_name):
    """The probe reaches the container itself: docker-proxy's open host port does not count."""
    with pytest.raises(AppReadinessException) as caught:
        deployer(hello_build, app_name, ["exec sleep 60"]).deploy(**{**FAST, "max_wait_time": 1.5})

    app = caught.value.deployed_app
    assert app is not None
    assert [r.status for r in app.replicas()] == ["running"]
