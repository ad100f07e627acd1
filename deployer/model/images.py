"""Where an app's image lives, read from its reference: what `bake_image` can return.

`bake_image` publishes to one of three targets, and each gives a different kind of reference:
the local OCI layout (`oci-layout://DIR@sha256:...`, the default with nothing configured),
a registry (`host/repo@sha256:...`) or the local Docker Engine (the image ID, `sha256:...`).
Runtimes decide from this how to get the image: load it, let their engine pull it, read it
(`bakery.inspect` reads all three), or refuse it with a way out (a cluster pulls from
registries only).
"""

from typing import Literal

from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.reference import DIGEST

ImageLocation = Literal["layout", "engine", "registry"]


def image_location(reference: str) -> ImageLocation:
    """`layout` (an OCI layout directory on this machine), `engine` (an image ID in the local
    Docker Engine, as `target="daemon"` returns) or `registry` (anything `docker pull` takes)."""
    if reference.startswith(LAYOUT_SCHEME):
        return "layout"
    if DIGEST.fullmatch(reference):
        return "engine"
    return "registry"
