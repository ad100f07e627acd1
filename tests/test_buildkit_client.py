"""The BuildKit client against the real Docker Engine's embedded BuildKit (/grpc, /session)."""

import socket
from pathlib import Path

import pytest

from bakery.buildkit.address import buildkit_address
from bakery.buildkit.client import BuildKit
from bakery.errors import ImageBakingException
from stagekit.errors import ErrorKind
from tests.fixtures.services import free_port


def test_list_workers_answers_through_the_engine(docker_engine):
    with BuildKit(buildkit_address("docker")) as client:
        workers = client.list_workers()
    assert workers, "the engine's BuildKit listed no worker"
    assert any("linux/amd64" in worker.platforms for worker in workers)


def test_disk_usage_answers(docker_engine):
    with BuildKit(buildkit_address("docker")) as client:
        records = client.disk_usage()
    assert all(record.size >= 0 for record in records)


def test_a_buildkitd_nobody_runs_is_a_typed_error_naming_it():
    port = free_port()
    address = buildkit_address(f"tcp://127.0.0.1:{port}")
    with BuildKit(address) as client, pytest.raises(ImageBakingException) as caught:
        client.list_workers()
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "start buildkitd" in caught.value.message


def test_an_engine_socket_nobody_listens_on_is_a_typed_error(tmp_path: Path, monkeypatch):
    dead = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(dead))
    listener.close()  # the path exists, nothing accepts on it
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")
    address = buildkit_address("docker")
    with BuildKit(address) as client, pytest.raises(ImageBakingException) as caught:
        client.list_workers()
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert str(dead) in caught.value.message
    assert "start the Docker Engine" in caught.value.message


@pytest.mark.parametrize(
    "value", ["docker://x", "tcp://nohost", "http://127.0.0.1:1234", "unix://"]
)
def test_a_malformed_address_is_refused(value):
    with pytest.raises(ImageBakingException, match="BAKERY_BUILDKIT"):
        buildkit_address(value)


def test_the_addresses_parse():
    assert buildkit_address("tcp://10.0.0.1:1234").target == "10.0.0.1:1234"
    assert buildkit_address("unix:///run/buildkit/buildkitd.sock").target == (
        "unix:/run/buildkit/buildkitd.sock"
    )
    assert buildkit_address("").kind == "docker"
