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
from bakery.base.load import load_base
from bakery.errors import ImageBakingException
from bakery.oci.cache import BlobCache
from bakery.oci.daemon import DaemonPublisher
from bakery.oci.errors import DaemonError
from bakery.oci.model import Image
from bakery.oci.read import open_image
from bakery.platforms import ARCHITECTURES
from deployer.exceptions import AppConfigError, BackendUnhealthyException
from deployer.model.images import image_location

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
    platform = _engine_platform(client)
    with open_image(reference) as image:
        manifest = image.manifest(platform)
        pinned = image.pinned(manifest.digest)
    tag = f"{LAYOUT_TAG_PREFIX}{manifest.digest.removeprefix('sha256:')}"
    with contextlib.closing(DaemonPublisher()) as publisher:
        found = publisher.find(tag)
        if found is not None:
            return found.reference
        blobs = BlobCache(config.bake_cache_dir() / "blobs")
        base = load_base(pinned, blobs, platform=platform)
        image_config = manifest.json["config"]
        loadable = Image(
            config=blobs.blob(image_config["digest"], image_config["mediaType"]),
            layers=base.layers,
        )
        return publisher.publish(loadable, tag)


def _engine_platform(client: docker.DockerClient) -> str:
    """The engine's `os/arch`: a multi-platform layout image is loaded for it."""
    machine = client.info().get("Architecture", "")
    return _PLATFORMS.get(machine) or config.platform()
