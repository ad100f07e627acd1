"""The part of a baked image the process runtime needs: the layers the bake added.

A baked image is a base (a Linux distribution) plus the bake's layers: packages installed
under a venv-style prefix and the small environment layer on top. Processes on this host
bring their own operating system, so only the bake's layers are read, never the base's; the
manifest's `org.bakery.base.layers` annotation says where they start. Blobs come from the
image's registry or OCI layout into the bakery's blob cache, verified against their digests;
an image in the local Docker Engine (`target="daemon"`) was published from that cache, so its
blobs are read there when they still are, else out of the engine (`engine.py`), with the
manifest bakery kept when it loaded the image.
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
from deployer.images import engine_manifest, image_location
from deployer.runtimes.process.engine import save_blobs

_CHUNK = 1 << 20
UNCOMPRESSED_LAYER = "application/vnd.oci.image.layer.v1.tar"


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
    diff_ids: tuple[str, ...]
    """Their uncompressed digests, from the config: how the engine hands layers out."""


def read_bake_layers(reference: str) -> BakeLayers:
    """The bake's part of the image at `reference` (a registry or `oci-layout://` reference,
    or an engine image ID). Reads the manifest and the small config blob; layer blobs wait
    for `fetch_layers`.
    """
    with _readable(reference):
        in_engine = image_location(reference) == "engine"
        manifest = engine_manifest(reference) if in_engine else read_manifest(reference)
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
    base_layers = int(annotations[BASE_LAYERS_ANNOTATION])
    config_digest = manifest["config"]["digest"]
    (config_path,) = _blobs(reference, [config_digest])
    image_config = json.loads(config_path.read_bytes())
    env = (image_config.get("config") or {}).get("Env") or []
    prefix = dict(item.split("=", 1) for item in env if "=" in item).get("VIRTUAL_ENV")
    if not prefix:
        raise AppConfigError(f"image {reference!r} sets no VIRTUAL_ENV: it has no bakery env")
    return BakeLayers(
        reference=reference,
        config_digest=config_digest,
        python=lock.python,
        platform=lock.platform,
        prefix=prefix,
        layers=tuple(manifest["layers"][base_layers:]),
        diff_ids=tuple(((image_config.get("rootfs") or {}).get("diff_ids") or [])[base_layers:]),
    )


def fetch_layers(image: BakeLayers) -> list[LayerBlob]:
    """The bake's layer blobs in the bakery's blob cache, fetched and verified if missing."""
    if image_location(image.reference) == "engine":
        forms = [
            [(layer["digest"], layer["mediaType"]), (diff_id, UNCOMPRESSED_LAYER)]
            for layer, diff_id in zip(image.layers, image.diff_ids, strict=True)
        ]
        return _engine_blobs(image.reference, forms)
    paths = _blobs(image.reference, [layer["digest"] for layer in image.layers])
    return [
        LayerBlob(path, layer["mediaType"]) for path, layer in zip(paths, image.layers, strict=True)
    ]


def _engine_blobs(reference: str, forms: Sequence[Sequence[tuple[str, str]]]) -> list[LayerBlob]:
    """Blobs of an engine image, each in the first of its forms (digest, media type) the blob
    cache has: the bake that loaded the image left them there, else they are read out of the
    engine, which hands layers out uncompressed (as their diff_ids)."""
    cache = _cache()
    absent = [
        digest for form in forms if not any(cache.has(d) for d, _ in form) for digest, _ in form
    ]
    if absent:
        save_blobs(reference, absent, cache)
    blobs = []
    for form in forms:
        present = [(digest, media_type) for digest, media_type in form if cache.has(digest)]
        if not present:
            raise AppConfigError(
                f"the Docker Engine's copy of image {reference} lacks {form[0][0]}; "
                "bake the image again"
            )
        digest, media_type = present[0]
        blobs.append(LayerBlob(cache.path(digest), media_type))
    return blobs


def _cache() -> BlobCache:
    return BlobCache(config.bake_cache_dir() / "blobs")


def _blobs(reference: str, digests: Sequence[str]) -> list[Path]:
    """Paths of `digests` in the blob cache; missing ones come from the image's source."""
    if image_location(reference) == "engine":
        return [blob.path for blob in _engine_blobs(reference, [[(d, "")] for d in digests])]
    cache = _cache()
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
