"""The registry client against a real CNCF distribution 2.8 registry."""

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from bakery.oci.auth import load_credentials
from bakery.oci.cache import BlobCache
from bakery.oci.errors import InvalidReference, RegistryError
from bakery.oci.model import OCI_INDEX, canonical_json
from bakery.oci.reference import Reference
from bakery.oci.registry import RegistryClient, is_insecure
from bakery.oci.remote import PARALLEL_BLOBS, RegistryPublisher
from tests.fixtures.registry import TestRegistry, TokenService
from tests.fixtures.services import free_port

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python:3.12-slim", "registry-1.docker.io", "library/python", "3.12-slim", None),
        ("python", "registry-1.docker.io", "library/python", None, None),
        ("docker.io/python", "registry-1.docker.io", "library/python", None, None),
        ("bitnami/redis:7", "registry-1.docker.io", "bitnami/redis", "7", None),
        ("ghcr.io/org/app/web:v1.2", "ghcr.io", "org/app/web", "v1.2", None),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", None, None),
        ("localhost/app:dev", "localhost", "app", "dev", None),
        (f"127.0.0.1:5000/app@{DIGEST}", "127.0.0.1:5000", "app", None, DIGEST),
        (f"host.example:443/app:v1@{DIGEST}", "host.example:443", "app", "v1", DIGEST),
    ],
)
def test_reference_parsing(text, registry, repository, tag, digest):
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


def test_reference_round_trips_and_rejects_bad_input():
    ref = Reference.parse("127.0.0.1:5000/team/app:v1")
    assert str(ref) == "127.0.0.1:5000/team/app:v1"
    assert str(ref.with_digest(DIGEST)) == f"127.0.0.1:5000/team/app@{DIGEST}"
    assert Reference.parse("python").identifier == "latest"
    for bad in ("Python:3", "app@sha256:123", "host:5000/app:bad tag", "host.io/"):
        with pytest.raises(InvalidReference):
            Reference.parse(bad)


def test_closed_port_raises_a_registry_error_that_says_what_to_do():
    client = RegistryClient(f"127.0.0.1:{free_port()}/app")
    with pytest.raises(RegistryError, match=r"is unreachable: .*; is it running\?"):
        client.blob_exists(DIGEST)


def test_upload_then_head_then_download_verified(registry: TestRegistry, make_image, tmp_path):
    repo = registry.fresh_repo()
    image = make_image("upload me\n")
    layer = image.layers[0]
    sent: list[int] = []
    with RegistryClient(f"{registry.host}/{repo}", cache=BlobCache(tmp_path / "other")) as client:
        assert not client.blob_exists(layer.digest)
        client.upload_blob(layer, progress=sent.append)
        assert client.blob_exists(layer.digest)
        fetched = client.get_blob(layer.digest)
    assert sent[-1] == layer.size
    assert fetched.path.read_bytes() == layer.path.read_bytes()
    assert registry.uploads(repo) == 1


def test_mount_links_a_blob_from_another_repo_without_upload(registry: TestRegistry, make_image):
    source, target = registry.fresh_repo(), registry.fresh_repo()
    layer = make_image("mount me\n").layers[0]
    with RegistryClient(f"{registry.host}/{source}") as client:
        client.upload_blob(layer)
    with RegistryClient(f"{registry.host}/{target}") as client:
        assert not client.mount_blob(layer.digest, registry.fresh_repo())  # nowhere to mount from
        assert client.mount_blob(layer.digest, source)
        assert client.blob_exists(layer.digest)
    assert (registry.mounts(target), registry.uploads(target)) == (1, 0)


def test_oci_manifest_round_trip_needs_the_oci_accept_type(registry: TestRegistry, make_image):
    repo = registry.fresh_repo()
    image = make_image(annotations={"dev.bakery.lock": "flask==3.1.0"})
    with RegistryClient(f"{registry.host}/{repo}") as client:
        for blob in image.blobs():
            client.upload_blob(blob)
        client.put_manifest("v1", image.manifest.data, image.manifest.media_type)
        fetched = client.get_manifest("v1")
        assert client.manifest_digest("v1") == image.digest
        assert client.manifest_digest("v2") is None
    assert fetched.data == image.manifest.data
    assert fetched.json["annotations"] == {"dev.bakery.lock": "flask==3.1.0"}
    # registry 2.8 hides OCI manifests from clients that do not ask for them
    assert httpx.get(f"{registry.url}/v2/{repo}/manifests/v1").status_code == 404


def test_an_index_resolves_to_the_requested_platform(registry: TestRegistry, make_image):
    repo = registry.fresh_repo()
    amd64, arm64 = make_image("amd64\n"), make_image("arm64\n")
    with RegistryClient(f"{registry.host}/{repo}") as client:
        entries = []
        for image, arch in ((amd64, "amd64"), (arm64, "arm64")):
            for blob in image.blobs():
                client.upload_blob(blob)
            client.put_manifest(image.digest, image.manifest.data, image.manifest.media_type)
            platform = {"os": "linux", "architecture": arch}
            entries.append({**_manifest_descriptor(image), "platform": platform})
        index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        client.put_manifest("multi", index, OCI_INDEX)

        assert client.get_manifest("multi", "linux/arm64").digest == arm64.digest
        assert client.get_manifest("multi").digest == amd64.digest
        assert client.get_manifest("multi", platform=None).media_type == OCI_INDEX
        with pytest.raises(RegistryError, match=r"has no linux/s390x image .*linux/amd64"):
            client.get_manifest("multi", "linux/s390x")


def _manifest_descriptor(image) -> dict:
    return {
        "mediaType": image.manifest.media_type,
        "digest": image.digest,
        "size": len(image.manifest.data),
    }


def test_a_missing_tag_is_a_typed_error_naming_the_registry(registry: TestRegistry):
    with (
        RegistryClient(f"{registry.host}/{registry.fresh_repo()}") as client,
        pytest.raises(RegistryError, match=rf"{registry.host}.*HTTP 404.*exist\?"),
    ):
        client.get_manifest("nope")


# bcrypt of "bakery-secret" (cost 4): the registry checks it, the test needs no bcrypt library
@pytest.fixture
def token_auth_registry(tmp_path) -> Iterator[tuple[TestRegistry, TokenService]]:
    workdir = tmp_path / "token-auth-registry"
    workdir.mkdir()
    tokens = TokenService(workdir, "baker", "bakery-secret")
    registry = TestRegistry(workdir, auth=tokens.registry_auth())
    registry.start()
    yield registry, tokens
    registry.stop()
    tokens.close()


def login(tmp_path: Path, monkeypatch, registry: TestRegistry) -> None:
    """What `docker login` leaves behind: a base64 `auths` entry, found via DOCKER_CONFIG."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    auth = base64.b64encode(b"baker:bakery-secret").decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {f"http://{registry.host}": {"auth": auth}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))


def test_basic_auth_with_credentials_from_docker_config(
    basic_auth_registry: TestRegistry, make_image, tmp_path, monkeypatch
):
    layer = make_image().layers[0]
    repo = f"{basic_auth_registry.host}/private/app"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with RegistryClient(repo) as anonymous, pytest.raises(RegistryError, match=r"HTTP 401.*login"):
        anonymous.upload_blob(layer)

    login(tmp_path, monkeypatch, basic_auth_registry)
    with RegistryClient(repo) as client:
        client.upload_blob(layer)
        assert client.blob_exists(layer.digest)
    assert basic_auth_registry.uploads("private/app") == 1


def test_parallel_first_pushes_share_one_login(
    basic_auth_registry: TestRegistry, make_image, tmp_path, monkeypatch
):
    """Eight blobs pushed at once by a client that has not authenticated yet: every request
    meets the 401 challenge together, and none may take another's answer for a refusal."""
    login(tmp_path, monkeypatch, basic_auth_registry)
    layers = [make_image(f"layer {n}\n").layers[0] for n in range(PARALLEL_BLOBS)]
    image = replace(make_image("top\n"), layers=tuple(layers))
    with RegistryPublisher(f"{basic_auth_registry.host}/private/many") as publisher:
        publisher.publish(image, "v1")
        assert publisher.stats.uploaded == len(image.blobs())
    assert basic_auth_registry.uploads("private/many") == len(image.blobs())


def test_bearer_token_flow_including_a_cross_repo_mount(
    token_auth_registry, make_image, tmp_path, monkeypatch
):
    registry, tokens = token_auth_registry
    layer = make_image().layers[0]
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with (
        RegistryClient(f"{registry.host}/team/a") as anonymous,
        pytest.raises(RegistryError, match=r"token service .* refused.*docker login"),
    ):
        anonymous.blob_exists(layer.digest)

    login(tmp_path, monkeypatch, registry)
    with RegistryClient(f"{registry.host}/team/a") as client:
        client.upload_blob(layer)
    with RegistryClient(f"{registry.host}/team/b") as client:
        assert client.mount_blob(layer.digest, "team/a")
    assert (registry.uploads("team/a"), registry.mounts("team/b")) == (1, 1)
    # the mount needed one token covering both repositories, as the challenge asked
    assert any(
        {scope.rsplit(":", 1)[0] for scope in scopes} == {"repository:team/a", "repository:team/b"}
        for scopes in tokens.issued
    )


@pytest.mark.parametrize(
    ("key", "entry", "registry"),
    [
        ("https://index.docker.io/v1/", {"auth": "YmFrZXI6c2VjcmV0"}, "registry-1.docker.io"),
        ("ghcr.io", {"username": "baker", "password": "secret"}, "ghcr.io"),
        ("http://127.0.0.1:5000", {"auth": "YmFrZXI6c2VjcmV0"}, "127.0.0.1:5000"),
    ],
)
def test_credentials_come_from_the_docker_config(key, entry, registry, tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {key: entry}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert load_credentials(registry) == ("baker", "secret")
    assert load_credentials("other.example") is None


@pytest.mark.parametrize(
    ("registry", "insecure"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("registry.internal:5000", True),
        ("builds.internal", True),
    ],
)
def test_plain_http_only_for_loopback_and_listed_registries(registry, insecure, monkeypatch):
    monkeypatch.setenv("BAKERY_INSECURE_REGISTRIES", "registry.internal:5000, builds.internal")
    assert is_insecure(registry) is insecure
