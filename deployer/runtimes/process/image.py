"""The part of a baked image the process runtime needs: the layers the bake added.

A baked image is a base (a Linux distribution) plus the bake's layers: packages installed
under a venv-style prefix and the small environment layer on top. Processes on this host
bring their own operating system, so only the bake's layers are read, never the base's. The
image is read through the bakery's one contract for baked images (`bakery.inspect`), from
wherever `bake_image` put it: a registry, an OCI layout or the local Docker Engine.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bakery.errors import ImageBakingException
from bakery.inspect import BakedImageInfo, fetch_bake_layers, read_baked
from deployer.exceptions import AppConfigError


@dataclass(frozen=True)
class LayerBlob:
    """One of the bake's layer blobs, on this machine."""

    path: Path
    media_type: str


def read_bake_layers(reference: str) -> BakedImageInfo:
    """The bake's facts for image `reference`; an image not baked by bakery is refused, and
    so is a conda image: its binaries hold the in-image prefix, so they run only in the image."""
    with _readable(reference):
        image = read_baked(reference)
    if image.lock.kind == "conda":
        raise AppConfigError(
            f"image {reference!r} is a conda image: its packages hold the image's prefix "
            f"({image.prefix}) in their binaries, so it cannot run on the process runtime. "
            "Deploy it with runtime='docker' or 'kubernetes'."
        )
    return image


def fetch_layers(image: BakedImageInfo) -> list[LayerBlob]:
    """The bake's layer blobs in the bakery's blob cache, fetched and verified if missing."""
    with _readable(image.reference):
        return [LayerBlob(path, media_type) for path, media_type in fetch_bake_layers(image)]


@contextmanager
def _readable(reference: str) -> Iterator[None]:
    """An image that cannot be read, or was not baked by bakery, is a bad `image=`."""
    try:
        yield
    except (ImageBakingException, OSError) as exc:
        raise AppConfigError(
            f"image {reference!r} cannot run on the process runtime: {exc}; it runs images "
            "baked by bakery: image=bake_image(...).image"
        ) from None
