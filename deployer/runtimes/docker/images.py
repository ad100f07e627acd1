"""The image a container runs, for any reference `bake_image` returns.

A registry reference is handed to the engine as it is (it pulls what it lacks), and so is an
engine image ID (`target="daemon"`). An OCI layout reference (the default target, with nothing
configured) means nothing to the engine: the image is loaded into it first, through bakery's
daemon publisher, as `bakery.local/images:layout-<manifest digest hex>`. The publisher's
`find` recognises an image it loaded while the engine still has it, so later starts cost one
engine call and load nothing.
"""

import contextlib

import docker

from bakery import config
from bakery.base.load import layout_digest, load_base
from bakery.base.source import parse_base
from bakery.errors import ImageBakingException
from bakery.lock import ARCHITECTURES
from bakery.oci.cache import BlobCache
from bakery.oci.daemon import DaemonPublisher
from bakery.oci.errors import DaemonError
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import Image
from deployer.exceptions import AppConfigError, BackendUnhealthyException
from deployer.images import image_location

LAYOUT_TAG_PREFIX = "layout-"
_PLATFORMS = {machine: platform for platform, machine in ARCHITECTURES.items()}


def engine_image(reference: str, client: docker.DockerClient) -> str:
    """What `docker run` takes for image `reference`: layout images are loaded first."""
    if image_location(reference) != "layout":
        return reference
    try:
        return _load_layout_image(reference, client)
    except DaemonError as error:
        raise BackendUnhealthyException("docker", error.message) from None
    except ImageBakingException as error:
        raise AppConfigError(
            f"image {reference!r} cannot be loaded into the Docker Engine: {error.message}"
        ) from None


def _load_layout_image(reference: str, client: docker.DockerClient) -> str:
    """The engine's image ID for the layout image, loading it unless it is there already."""
    source = parse_base(reference)
    assert source.layout is not None  # image_location said it is a layout reference
    digest = source.digest or layout_digest(source.layout, source.tag)
    tag = f"{LAYOUT_TAG_PREFIX}{digest.removeprefix('sha256:')}"
    with contextlib.closing(DaemonPublisher()) as publisher:
        found = publisher.find(tag)
        if found is not None:
            return found.reference
        blobs = BlobCache(config.bake_cache_dir() / "blobs")
        image = load_base(source.pinned(digest), blobs, platform=_engine_platform(client))
        image_config = LayoutPublisher(source.layout).manifest(image.digest)["config"]
        loadable = Image(
            config=blobs.blob(image_config["digest"], image_config["mediaType"]),
            layers=image.layers,
        )
        return publisher.publish(loadable, tag)


def _engine_platform(client: docker.DockerClient) -> str:
    """The engine's `os/arch`: a multi-platform layout image is loaded for it."""
    machine = client.info().get("Architecture", "")
    return _PLATFORMS.get(machine) or config.platform()
