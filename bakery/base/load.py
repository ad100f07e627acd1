"""Load a base image, pinned by manifest digest, into the local BlobCache.

The image is read through `bakery.oci.read.open_image`, so a registry and an OCI layout
are one code path here; every blob is verified on its way into the cache.

Docker media types (Docker Hub serves them) are renamed to their OCI equivalents: the bytes
and digests are identical, only the descriptor's label changes, so the bakery can append
its layers and write one OCI manifest for the whole image.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

from bakery.base.model import BaseImage
from bakery.base.python import VERSION_LABEL, detect_python
from bakery.oci.cache import BlobCache
from bakery.oci.errors import OciError
from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.model import (
    DOCKER_LAYER_GZIP,
    MANIFEST_TYPES,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    Layer,
    Manifest,
    platform_matches,
)
from bakery.oci.read import LayoutReader, open_image
from bakery.oci.reference import Reference
from bakery.platforms import DEFAULT_PLATFORM

_OCI_LAYER_TYPE = {
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": OCI_LAYER,
}


def load_base(
    reference: str,
    cache: BlobCache,
    *,
    platform: str = DEFAULT_PLATFORM,
    fetch_layers: bool = True,
) -> BaseImage:
    """The base image `reference` for `platform`, its config and layers in `cache`.

    With `fetch_layers=False` the layers of a registry or layout base are only described,
    not copied (unless its Python must be found by scanning them): a bake that publishes to
    the same registry mounts them there and never needs their bytes, and one that does need
    them gets them with `fetch_base_layers` while it resolves and builds. An engine image
    is always read in full."""
    with open_image(reference, cache) as image:
        manifest = image.manifest(platform)
        _check_manifest(manifest, reference)
        config = json.loads(image.fetch(manifest.json["config"]["digest"]).read_bytes())
        labels = (config.get("config") or {}).get("Labels") or {}
        deferrable = image.repository is not None or reference.startswith(LAYOUT_SCHEME)
        if fetch_layers or not deferrable or VERSION_LABEL not in labels:
            for descriptor in manifest.json["layers"]:
                image.fetch(descriptor["digest"])
        pinned = image.pinned(manifest.digest)
        return _assemble(pinned, manifest, config, cache, platform, image.repository)


def fetch_base_layers(base: BaseImage, cache: BlobCache) -> None:
    """Copy in the layers of a base that `load_base` only described. Concurrent calls (a
    prefetch, the glibc reader, the push threads) fetch each layer once: a call that finds
    one being fetched waits for it."""
    missing = [layer for layer in base.layers if not cache.has(layer.digest)]
    if not missing:
        return
    with open_image(base.reference, cache) as image:
        for layer in missing:
            with _fetching(cache, layer.digest):
                if not cache.has(layer.digest):
                    image.fetch(layer.digest)


def readable_layers(base: BaseImage, cache: BlobCache) -> list[Layer]:
    """The base's layers, each with a file to read it from now: the cache's copy, else (a
    layout base) the layout's own file, which need not wait for that copy (it is verified
    as it is copied in, and a mismatch fails the bake when the image is published), else
    fetched into the cache first."""
    if not base.reference.startswith(LAYOUT_SCHEME):
        fetch_base_layers(base, cache)
        return list(base.layers)
    with open_image(base.reference) as image:
        assert isinstance(image, LayoutReader)
        return [
            layer if cache.has(layer.digest) else replace(layer, path=image.blob_path(layer.digest))
            for layer in base.layers
        ]


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _fetching(cache: BlobCache, digest: str) -> threading.Lock:
    """The lock held while `digest` is fetched into `cache` in this process."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((str(cache.path(digest)), digest), threading.Lock())


def _check_manifest(manifest: Manifest, where: str) -> None:
    if manifest.media_type not in MANIFEST_TYPES:
        raise OciError(
            f"{where} is a {manifest.media_type or 'schema 1 or unknown'} manifest; "
            "only OCI and Docker v2 image manifests can be a base image"
        )


def _assemble(
    reference: str,
    manifest: Manifest,
    config: dict[str, Any],
    cache: BlobCache,
    platform: str,
    repository: Reference | None,
) -> BaseImage:
    """BaseImage from a manifest whose config and layers are all in `cache`."""
    _check_platform(config, platform, reference)
    descriptors = manifest.json["layers"]
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(descriptors):
        raise OciError(
            f"{reference} is inconsistent: {len(descriptors)} layers but "
            f"{len(diff_ids)} diff_ids in its config"
        )
    layers = tuple(
        Layer(
            d["digest"],
            d["size"],
            _oci_media_type(d["mediaType"], reference),
            cache.path(d["digest"]),
            diff_id,
        )
        for d, diff_id in zip(descriptors, diff_ids, strict=True)
    )
    return BaseImage(
        reference=reference,
        digest=manifest.digest,
        repository=repository,
        config=config,
        layers=layers,
        python=detect_python(config, layers),
    )


def _oci_media_type(media_type: str, reference: str) -> str:
    if "foreign" in media_type or "nondistributable" in media_type:
        raise OciError(
            f"{reference} has a foreign (non-distributable) layer, as Windows images do; "
            "use a Linux base image"
        )
    return _OCI_LAYER_TYPE.get(media_type, media_type)


def _check_platform(config: dict[str, Any], platform: str, reference: str) -> None:
    if not platform_matches(config, platform):
        actual = "/".join(filter(None, (config.get(k) for k in ("os", "architecture", "variant"))))
        raise OciError(
            f"{reference} is a {actual} image, not {platform}; "
            f"pick a base image built for {platform}"
        )
