"""The part of a baked image the process runtime needs: the layers the bake added.

A baked image is a base (a Linux distribution) plus the bake's layers: packages installed
under a venv-style prefix and the small environment layer on top. Processes on this host
bring their own operating system, so only the bake's layers are read, never the base's; the
manifest's `org.bakery.base.layers` annotation says where they start. Blobs come from the
image's registry or OCI layout into the bakery's blob cache, verified against their digests.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bakery import config
from bakery.base.source import parse_base
from bakery.errors import ImageBakingException
from bakery.image import BASE_LAYERS_ANNOTATION, LOCK_ANNOTATION
from bakery.inspect import read_manifest
from bakery.lock import Lock
from bakery.oci.cache import BlobCache
from bakery.oci.errors import OciError
from bakery.oci.reference import DIGEST
from bakery.oci.registry import RegistryClient
from deployer.exceptions import AppConfigError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerBlob:
    """One of the bake's layer blobs, on this machine."""

    path: Path
    media_type: str


@dataclass(frozen=True)
class BakeLayers:
    """What the bake put on top of the base, as the manifest and config describe it."""

    reference: str
    config_digest: str
    """The image ID: it names every layer (through the config's diff_ids) and the labels."""
    python: str
    """The Python X.Y the packages were installed for."""
    platform: str
    prefix: str
    """Where the packages live in the image (its VIRTUAL_ENV), e.g. /opt/bakery/env."""
    layers: tuple[dict[str, str], ...]
    """Manifest descriptors of the bake's layers, lowest first."""


def read_bake_layers(reference: str) -> BakeLayers:
    """The bake's part of the image at `reference` (a registry or `oci-layout://` reference).

    Reads the manifest and the small config blob; layer blobs wait for `fetch_layers`.
    """
    with _readable(reference):
        manifest = read_manifest(reference)
    annotations = manifest.get("annotations") or {}
    if LOCK_ANNOTATION not in annotations:
        raise AppConfigError(
            f"image {reference!r} was not baked by bakery (it carries no lock); the process "
            "runtime runs baked images only: image=bake_image(...).image"
        )
    if BASE_LAYERS_ANNOTATION not in annotations:
        raise AppConfigError(
            f"image {reference!r} does not record which of its layers are the base's (an "
            "older bakery baked it); bake it again with bake_image(..., force=True)"
        )
    lock = Lock.from_json(annotations[LOCK_ANNOTATION])
    config_digest = manifest["config"]["digest"]
    (config_path,) = _blobs(reference, [config_digest])
    env = (json.loads(config_path.read_bytes()).get("config") or {}).get("Env") or []
    prefix = dict(item.split("=", 1) for item in env if "=" in item).get("VIRTUAL_ENV")
    if not prefix:
        raise AppConfigError(f"image {reference!r} sets no VIRTUAL_ENV: it has no bakery env")
    return BakeLayers(
        reference=reference,
        config_digest=config_digest,
        python=lock.python,
        platform=lock.platform,
        prefix=prefix,
        layers=tuple(manifest["layers"][int(annotations[BASE_LAYERS_ANNOTATION]) :]),
    )


def fetch_layers(image: BakeLayers) -> list[LayerBlob]:
    """The bake's layer blobs in the bakery's blob cache, fetched and verified if missing."""
    paths = _blobs(image.reference, [layer["digest"] for layer in image.layers])
    return [
        LayerBlob(path, layer["mediaType"]) for path, layer in zip(paths, image.layers, strict=True)
    ]


def _blobs(reference: str, digests: Sequence[str]) -> list[Path]:
    """Paths of `digests` in the blob cache; missing ones come from the image's source."""
    cache = BlobCache(config.bake_cache_dir() / "blobs")
    missing = [digest for digest in digests if not cache.has(digest)]
    with _readable(reference):
        source = parse_base(reference)
        if missing and source.registry is not None:
            with RegistryClient(source.registry, cache=cache) as client:
                for digest in missing:
                    client.get_blob(digest)
        elif missing:
            assert source.layout is not None  # a source is a layout or a registry reference
            for digest in missing:
                _copy_from_layout(source.layout, digest, cache)
    return [cache.path(digest) for digest in digests]


def _copy_from_layout(layout: Path, digest: str, cache: BlobCache) -> None:
    if not DIGEST.fullmatch(digest):  # it becomes a path: no traversal
        raise OciError(f"the manifest names an invalid blob digest {digest!r}")
    with (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).open("rb") as handle:
        cache.put_stream(iter(lambda: handle.read(_CHUNK), b""), expected=digest)


@contextmanager
def _readable(reference: str) -> Iterator[None]:
    """An image that cannot be read is a bad `image=`: say which and why."""
    try:
        yield
    except (ImageBakingException, OSError) as exc:
        raise AppConfigError(f"image {reference!r} cannot be read: {exc}") from None
