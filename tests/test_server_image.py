"""The server image (top-level Dockerfile): built from the host-side wheelhouse on the
bakery's own base, run in the Docker Engine against the test registry, a remote bake through
it, and the baked image run in the engine.

The container shares the host's network (`--network host`): the test registry and the
pushed base listen on this machine's loopback, and no other address is used. The image is
built once per machine and context (serverimage names it by digest); a session that finds it
only checks that it is current.
"""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from serverimage.build import build_image
from tests.fixtures.base_image import cached_debian_base
from tests.fixtures.docker_engine import DockerCli
from tests.fixtures.services import free_port, wait_until

CA_BUNDLE = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
"""This machine's CA bundle: the container trusts what the host trusts (PyPI's TLS is
intercepted here by a proxy whose CA only the host's bundle holds)."""


@pytest.fixture(scope="session")
def server_image(docker_engine: DockerCli) -> str:
    """`bakery-server:<digest>`, built on the tests' cached Debian base unless present."""
    return build_image(make_base=cached_debian_base, log=lambda _line: None)


@pytest.fixture
def volumes(docker_engine: DockerCli) -> Iterator[tuple[str, str]]:
    """Fresh named volumes for the data and cache dirs (owned by the image's user)."""
    names = tuple(f"bakery-test-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("data", "cache"))
    yield names[0], names[1]
    for name in names:
        subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True)


def test_the_image_is_non_root_with_volumes_and_a_healthcheck(server_image, docker_engine):
    inspected = docker_engine.run("image", "inspect", "--format", "{{json .Config}}", server_image)
    config = json.loads(inspected.stdout)
    assert config["User"] == "10001:10001"
    assert set(config["Volumes"]) == {"/var/lib/bakery", "/var/cache/bakery"}
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["bakery"]
    assert config["Cmd"] == [
        "serve", "--host", "0.0.0.0", "--port", "50051", "--http-port", "8080",
    ]  # fmt: skip


def test_a_remote_bake_through_the_server_container_runs_in_the_engine(
    server_image, docker_engine, volumes, registry, pushed_debian_base, monkeypatch
):
    data, cache = volumes
    created = docker_engine.run(
        "run", "--rm", "-v", f"{data}:/var/lib/bakery", server_image,
        "tokens", "create", "--scope", "admin", "image-test",
    )  # fmt: skip
    token = created.stdout.decode().strip()
    port, http_port = free_port(), free_port()
    repo = registry.fresh_repo("image")
    name = f"bakery-test-server-{uuid.uuid4().hex[:8]}"
    docker_engine.run(
        "run", "--detach", "--name", name, "--network", "host",
        "-v", f"{data}:/var/lib/bakery", "-v", f"{cache}:/var/cache/bakery",
        "-v", f"{CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",
        "-e", f"BAKERY_REGISTRY={registry.host}/{repo}",
        "-e", f"BAKERY_BASE_IMAGE={pushed_debian_base}",
        "-e", f"BAKERY_HTTP_PORT={http_port}",
        server_image,
        "serve", "--host", "0.0.0.0", "--port", str(port), "--http-port", str(http_port),
    )  # fmt: skip
    url = f"grpc://127.0.0.1:{port}"
    try:
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        wait_until(lambda: _serving(health, name), f"the server in container {name}", 120)

        monkeypatch.delenv("BAKERY_TOKEN", raising=False)
        with pytest.raises(ImageBakingException, match="needs a token"):
            bake_image(pypi={"six": "==1.17.0"}, service=url)

        monkeypatch.setenv("BAKERY_TOKEN", token)
        baked = bake_image(pypi={"six": "==1.17.0"}, service=url, timeout=600)
        assert baked.image.startswith(f"{registry.host}/{repo}@sha256:")
        assert registry.tags(repo) and all(t.startswith("spec-") for t in registry.tags(repo))

        script = "import six; print(six.__version__)"
        ran = docker_engine.run("run", "--rm", baked.image, baked.python_path, "-c", script)
        assert ran.stdout.decode().strip() == "1.17.0"

        wait_until(lambda: _health(name) == "healthy", f"{name} to be healthy", 120)
    finally:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert "listening on 0.0.0.0" in logs.stderr, logs.stderr


def _serving(health: health_pb2_grpc.HealthStub, container: str) -> bool:
    if _state(container) != "running":
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
        raise AssertionError(f"the server container stopped:\n{logs.stdout}{logs.stderr}")
    try:
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
    except grpc.RpcError:
        return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def _state(container: str) -> str:
    inspect = ["docker", "inspect", "--format", "{{.State.Status}}", container]
    return subprocess.run(inspect, capture_output=True, text=True).stdout.strip()


def _health(container: str) -> str:
    inspect = ["docker", "inspect", "--format", "{{.State.Health.Status}}", container]
    return subprocess.run(inspect, capture_output=True, text=True).stdout.strip()
