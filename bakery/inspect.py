"""Reading a baked image back: the one contract other stages read baked images through.

A baked image describes itself: its manifest annotations carry the lock and how many of its
layers are the base's, and its config names the env prefix. `read_baked` returns those facts;
`fetch_blobs` and `fetch_bake_layers` bring its blobs into the local BlobCache. The deployer
uses these and nothing else of the bakery's internals.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakery import config
from bakery.errors import ImageBakingException
from bakery.image import BASE_LAYERS_ANNOTATION, LOCK_ANNOTATION
from bakery.lock import Lock
from bakery.oci.cache import BlobCache
from bakery.oci.read import open_image
from bakery.platforms import DEFAULT_PLATFORM


@dataclass(frozen=True)
class BakedImageInfo:
    """What a baked image says about itself."""

    reference: str
    lock: Lock
    config_digest: str
    """The image ID: it names every layer (through the config's diff_ids) and the labels."""
    prefix: str
    """Where the packages live in the image (its VIRTUAL_ENV or CONDA_PREFIX), e.g.
    /opt/bakery/env."""
    base_layers: int
    """How many of the manifest's layers, from the bottom, are the base image's."""
    layers: tuple[dict[str, Any], ...]
    """Every layer descriptor of the manifest, lowest first."""
    diff_ids: tuple[str, ...]
    """Their uncompressed digests, from the config."""

    @property
    def python(self) -> str:
        """The Python X.Y the packages were installed for."""
        return self.lock.python

    @property
    def platform(self) -> str:
        return self.lock.platform

    @property
    def bake_layers(self) -> tuple[dict[str, Any], ...]:
        """The layers the bake added on top of the base."""
        return self.layers[self.base_layers :]

    @property
    def bake_diff_ids(self) -> tuple[str, ...]:
        return self.diff_ids[self.base_layers :]


def read_manifest(reference: str) -> dict[str, Any]:
    """The manifest an image reference (registry or `oci-layout://`) points at."""
    with open_image(reference) as image:
        return image.manifest(DEFAULT_PLATFORM).json


def read_lock(reference: str) -> Lock:
    """The lock a baked image carries: every package with its version, URL and sha256."""
    return _lock(reference, read_manifest(reference))


def read_baked(reference: str) -> BakedImageInfo:
    """The facts image `reference` records about its bake; reads the manifest and the small
    config blob, never a layer."""
    manifest = read_manifest(reference)
    lock = _lock(reference, manifest)
    annotations = manifest.get("annotations") or {}
    if BASE_LAYERS_ANNOTATION not in annotations:
        raise ImageBakingException(
            f"{reference} does not record which of its layers are the base's (an older "
            "bakery baked it); bake it again with bake_image(..., force=True)"
        )
    config_digest = manifest["config"]["digest"]
    (config_path,) = fetch_blobs(reference, [config_digest])
    image_config = json.loads(config_path.read_bytes())
    env = (image_config.get("config") or {}).get("Env") or []
    variables = dict(item.split("=", 1) for item in env if "=" in item)
    prefix = variables.get("VIRTUAL_ENV") or variables.get("CONDA_PREFIX")
    if not prefix:
        raise ImageBakingException(
            f"{reference} sets neither VIRTUAL_ENV nor CONDA_PREFIX: it has no bakery env"
        )
    return BakedImageInfo(
        reference=reference,
        lock=lock,
        config_digest=config_digest,
        prefix=prefix,
        base_layers=int(annotations[BASE_LAYERS_ANNOTATION]),
        layers=tuple(manifest["layers"]),
        diff_ids=tuple((image_config.get("rootfs") or {}).get("diff_ids") or ()),
    )


def fetch_blobs(reference: str, digests: Sequence[str]) -> list[Path]:
    """Paths of `digests` in the bakery's blob cache, read from the image's source (and
    verified) where missing."""
    cache = _cache()
    missing = [digest for digest in digests if not cache.has(digest)]
    if missing:
        with open_image(reference, cache) as image:
            for digest in missing:
                image.fetch(digest)
    return [cache.path(digest) for digest in digests]


def fetch_bake_layers(image: BakedImageInfo) -> list[tuple[Path, str]]:
    """The bake's layers on this machine, each with its media type (a Docker Engine hands
    layers out uncompressed)."""
    with open_image(image.reference, _cache()) as reader:
        return reader.fetch_layers(image.bake_layers, image.bake_diff_ids)


def _cache() -> BlobCache:
    return BlobCache(config.bake_cache_dir() / "blobs")


def _lock(reference: str, manifest: dict[str, Any]) -> Lock:
    annotations = manifest.get("annotations") or {}
    if LOCK_ANNOTATION not in annotations:
        raise ImageBakingException(
            f"{reference} was not baked by bakery: it carries no bakery lock annotation"
        )
    return Lock.from_json(annotations[LOCK_ANNOTATION])
