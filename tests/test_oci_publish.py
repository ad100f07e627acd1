"""Each publish target against the real thing: registry 2.8, the filesystem, Docker Engine."""

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery.oci.cache import file_digest
from bakery.oci.daemon import DaemonPublisher, DockerEngine
from bakery.oci.errors import DaemonError, LayoutError, RegistryError
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import REF_NAME_ANNOTATION, Image
from bakery.oci.publish import Publisher
from bakery.oci.registry import RegistryClient
from bakery.oci.remote import PushStats, RegistryPublisher
from tests.fixtures.docker_engine import DockerCli
from tests.fixtures.registry import TestRegistry

LOCK = {"dev.bakery.lock": "flask==3.1.0"}


@pytest.fixture
def daemon_publisher(docker_engine: DockerCli, tmp_path) -> Iterator[DaemonPublisher]:
    """A publisher into a repository of its own; its images are removed afterwards."""
    publisher = DaemonPublisher(f"bakery.test/{uuid.uuid4().hex[:12]}", state_dir=tmp_path)
    yield publisher
    listed = docker_engine.run("image", "ls", "-q", publisher.repository).stdout.split()
    if listed:
        docker_engine.run("image", "rm", "-f", *sorted({i.decode() for i in listed}))


def read_file_from_image(docker: DockerCli, image: str, path: str) -> bytes:
    """A file's bytes from an image with no shell: create a container, copy out, remove."""
    container = docker.run("create", image).stdout.decode().strip()
    try:
        archive = docker.run("cp", f"{container}:{path}", "-").stdout
    finally:
        docker.run("rm", container)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.extractfile(Path(path).name).read()


def test_registry_publish_uploads_once_then_skips(registry: TestRegistry, make_image):
    repo = registry.fresh_repo()
    image = make_image(annotations=LOCK)
    with RegistryPublisher(f"{registry.host}/{repo}") as publisher:
        reference = publisher.publish(image, "spec-1")
        assert reference == f"{registry.host}/{repo}@{image.digest}"
        assert publisher.stats == PushStats(uploaded=2, uploaded_bytes=_size(image), skipped=0)
        assert registry.uploads(repo) == 2

        publisher.publish(image, "spec-1")
        assert publisher.stats.skipped == 2
        assert registry.uploads(repo) == 2  # the registry received nothing new

        found = publisher.find("spec-1")
        assert found is not None
        assert found.reference == reference
        assert found.manifest["annotations"] == LOCK
        assert publisher.resolve("spec-1") == image.digest
        assert publisher.find("spec-2") is None
        with pytest.raises(RegistryError, match="does not exist"):
            publisher.resolve("spec-2")
    assert registry.tags(repo) == ["spec-1"]


def test_registry_publish_to_a_second_repo_mounts_instead_of_uploading(
    registry: TestRegistry, make_image
):
    first, second = registry.fresh_repo(), registry.fresh_repo()
    image = make_image()
    with RegistryPublisher(f"{registry.host}/{first}") as publisher:
        publisher.publish(image, "spec-1")
    sources = {blob.digest: first for blob in image.blobs()}
    with RegistryPublisher(f"{registry.host}/{second}") as publisher:
        publisher.publish(image, "spec-1", mount_from=sources)
        assert publisher.stats == PushStats(mounted=2)
    assert (registry.mounts(second), registry.uploads(second)) == (2, 0)
    assert registry.tags(second) == ["spec-1"]


@pytest.mark.parametrize("stop_after", ["uploaded", "manifest"])
def test_registry_stopped_mid_push_leaves_no_tag(registry: TestRegistry, make_image, stop_after):
    """The tag is written last: whenever the registry dies, the tag never dangles."""
    repo = registry.fresh_repo()
    image = make_image()

    def stop_registry(step: str, digest: str) -> None:
        if step == stop_after:
            registry.stop()

    publisher = RegistryPublisher(f"{registry.host}/{repo}", on_step=stop_registry)
    with publisher, pytest.raises(RegistryError, match=r"unreachable.*is it running"):
        publisher.publish(image, "spec-1")

    registry.start()
    assert registry.tags(repo) == []
    with RegistryClient(f"{registry.host}/{repo}") as client:
        stored = client.manifest_digest(image.digest)
    assert stored == (image.digest if stop_after == "manifest" else None)


def test_docker_pulls_and_reads_what_the_registry_publisher_pushed(
    registry: TestRegistry, make_image, docker_engine: DockerCli
):
    image = make_image("pulled by docker\n")
    with RegistryPublisher(f"{registry.host}/{registry.fresh_repo()}") as publisher:
        reference = publisher.publish(image, "spec-1")
    docker_engine.run("pull", reference)
    try:
        assert read_file_from_image(docker_engine, reference, "/hello.txt") == b"pulled by docker\n"
    finally:
        docker_engine.run("image", "rm", reference)


def test_layout_publisher_writes_a_valid_layout(make_image, tmp_path):
    layout = tmp_path / "layout"
    image = make_image(annotations=LOCK)
    publisher = LayoutPublisher(layout)
    reference = publisher.publish(image, "spec-1")

    assert reference == f"oci-layout://{layout}@{image.digest}"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["annotations"][REF_NAME_ANNOTATION] == "spec-1"
    manifest_path = layout / "blobs/sha256" / entry["digest"].removeprefix("sha256:")
    assert file_digest(manifest_path) == (entry["digest"], entry["size"])
    manifest = json.loads(manifest_path.read_bytes())
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = layout / "blobs/sha256" / descriptor["digest"].removeprefix("sha256:")
        assert file_digest(blob) == (descriptor["digest"], descriptor["size"])
    # same filesystem as the blob cache: linked, not copied
    layer = image.layers[0]
    assert (layout / "blobs/sha256" / layer.digest[7:]).stat().st_ino == layer.path.stat().st_ino


def test_layout_retag_replaces_the_entry_and_find_follows_it(make_image, tmp_path):
    publisher = LayoutPublisher(tmp_path / "layout")
    first, second = make_image("one\n"), make_image("two\n", annotations=LOCK)
    publisher.publish(first, "spec-1")
    publisher.publish(second, "spec-1")
    publisher.publish(first, "spec-2")

    index = json.loads((tmp_path / "layout/index.json").read_text())
    tags = {m["annotations"][REF_NAME_ANNOTATION]: m["digest"] for m in index["manifests"]}
    assert tags == {"spec-1": second.digest, "spec-2": first.digest}
    assert publisher.find("spec-1").manifest["annotations"] == LOCK
    assert publisher.find("spec-3") is None
    with pytest.raises(LayoutError, match="no image tagged 'spec-3'"):
        publisher.resolve("spec-3")


def test_layout_on_another_filesystem_copies_blobs(make_image, tmp_path):
    """/dev/shm is tmpfs here, so hard links from the cache cannot work there."""
    image = make_image()
    layout = Path("/dev/shm") / f"bakery-layout-{uuid.uuid4().hex}"
    assert layout.parent.stat().st_dev != image.layers[0].path.stat().st_dev
    try:
        LayoutPublisher(layout).publish(image, "spec-1")
        copied = layout / "blobs/sha256" / image.layers[0].digest[7:]
        assert copied.read_bytes() == image.layers[0].path.read_bytes()
    finally:
        for path in sorted(layout.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        layout.rmdir()


def test_daemon_publisher_loads_and_tags_the_image(
    daemon_publisher: DaemonPublisher, make_image, docker_engine: DockerCli
):
    image = make_image("loaded into docker\n", annotations=LOCK)
    reference = daemon_publisher.publish(image, "spec-1")
    assert reference == image.config.digest  # the image ID on the classic image store

    name = f"{daemon_publisher.repository}:spec-1"
    inspected = json.loads(docker_engine.run("image", "inspect", name).stdout)[0]
    assert inspected["Id"] == reference
    assert inspected["RootFS"]["Layers"] == [image.layers[0].diff_id]
    assert read_file_from_image(docker_engine, name, "/hello.txt") == b"loaded into docker\n"

    found = daemon_publisher.find("spec-1")
    assert found is not None
    assert found.reference == reference
    assert found.manifest["annotations"] == LOCK
    assert daemon_publisher.resolve("spec-1") == image.digest

    docker_engine.run("image", "rm", name)
    assert daemon_publisher.find("spec-1") is None


@pytest.fixture(params=["registry", "layout", "daemon"])
def any_publisher(request, tmp_path) -> Publisher:
    if request.param == "registry":
        registry = request.getfixturevalue("registry")
        publisher = RegistryPublisher(f"{registry.host}/{registry.fresh_repo()}")
        request.addfinalizer(publisher.close)
        return publisher
    if request.param == "layout":
        return LayoutPublisher(tmp_path / "layout")
    return request.getfixturevalue("daemon_publisher")


def test_every_publisher_finds_a_baked_image_by_its_tag(any_publisher: Publisher, make_image):
    """The bakery's database lookup, the same through the one interface."""
    tag = "spec-" + uuid.uuid4().hex[:8]
    assert any_publisher.find(tag) is None
    image = make_image(f"{tag}\n", annotations=LOCK)
    reference = any_publisher.publish(image, tag)
    found = any_publisher.find(tag)
    assert found is not None
    assert found.reference == reference
    assert found.manifest["annotations"] == LOCK
    assert any_publisher.resolve(tag) == image.digest


def _size(image) -> int:
    return sum(blob.size for blob in image.blobs())


def test_daemon_refusal_and_absence_are_typed_errors(
    daemon_publisher: DaemonPublisher, make_image, tmp_path
):
    one, two = make_image("one\n"), make_image("two\n")
    inconsistent = Image(config=two.config, layers=one.layers)  # diff_ids do not match
    with pytest.raises(DaemonError, match="refused to load the image"):
        daemon_publisher.publish(inconsistent, "spec-1")

    nowhere = DockerEngine(f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(DaemonError, match=r"is unreachable.*is dockerd running"):
        DaemonPublisher(engine=nowhere, state_dir=tmp_path).publish(one, "spec-1")


def test_registry_publisher_fetches_a_blob_known_only_by_descriptor(
    registry, fresh_repo, make_image, tmp_path
):
    image = make_image("fetched late\n")
    layer = image.layers[0]
    kept = tmp_path / "kept"
    layer.path.rename(kept)
    fetched = []

    def fetch(blob):
        fetched.append(blob.digest)
        kept.rename(blob.path)

    reference = RegistryPublisher(fresh_repo).publish(image, "late", fetch=fetch)
    assert fetched == [layer.digest]
    assert reference.endswith(image.digest)
