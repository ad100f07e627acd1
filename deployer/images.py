"""Where an app's image lives, read from its reference: what `bake_image` can return.

`bake_image` publishes to one of three targets, and each gives a different kind of reference:
the local OCI layout (`oci-layout://DIR@sha256:...`, the default with nothing configured),
a registry (`host/repo@sha256:...`) or the local Docker Engine (the image ID, `sha256:...`).
Runtimes decide from this how to get the image: load it, let their engine pull it, read it
(`engine_manifest` for the engine's), or refuse it with a way out (a cluster pulls from
registries only).
"""

import contextlib
from typing import Any, Literal

from bakery.image import SPEC_ID_LABEL
from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.reference import DIGEST
from deployer.exceptions import AppConfigError

ImageLocation = Literal["layout", "engine", "registry"]


def image_location(reference: str) -> ImageLocation:
    """`layout` (an OCI layout directory on this machine), `engine` (an image ID in the local
    Docker Engine, as `target="daemon"` returns) or `registry` (anything `docker pull` takes)."""
    if reference.startswith(LAYOUT_SCHEME):
        return "layout"
    if DIGEST.fullmatch(reference):
        return "engine"
    return "registry"


def engine_manifest(image_id: str) -> dict[str, Any]:
    """The manifest of an image bakery loaded into the local Docker Engine (`target="daemon"`).

    The engine keeps no manifests; bakery's daemon publisher keeps the one it loaded under the
    bake's tag, `spec-<spec id>`, and the engine keeps the spec id as an image label.
    """
    from docker.errors import ImageNotFound

    from bakery.oci.daemon import DaemonPublisher
    from deployer.runtimes.docker.engine import connect

    try:
        labels = connect().images.get(image_id).labels or {}
    except ImageNotFound:
        raise AppConfigError(
            f"image {image_id} is not in the Docker Engine (removed since it was baked?); "
            "bake it again with target='daemon'"
        ) from None
    spec_id = labels.get(SPEC_ID_LABEL)
    if spec_id is None:
        raise AppConfigError(
            f"image {image_id} in the Docker Engine was not baked by bakery (it has no "
            f"{SPEC_ID_LABEL} label); run a baked image: image=bake_image(...).image"
        )
    with contextlib.closing(DaemonPublisher()) as publisher:
        found = publisher.find(f"spec-{spec_id}")
    if found is None or found.reference != image_id:
        raise AppConfigError(
            f"bakery kept no manifest for image {image_id} (baked on another machine, or its "
            "tag was moved since); bake it again with target='daemon'"
        )
    return found.manifest
