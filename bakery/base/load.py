"""Load a base image, pinned by manifest digest, into the local BlobCache.

Two sources: a registry (`host:port/repo:tag`, `host/repo@sha256:...`, Docker Hub short
names) and an OCI image-layout directory (`oci-layout://DIR[:tag|@sha256:...]`, the form
`LayoutPublisher` returns). Every blob is verified against its digest on the way into the
cache, and blobs the cache already holds are not fetched again.

Docker media types (Docker Hub serves them) are renamed to their OCI equivalents: the bytes
and digests are identical, only the descriptor's label changes, so the bakery can append
its layers and write one OCI manifest for the whole image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bakery.base.model import BaseImage
from bakery.base.python import VERSION_LABEL, detect_python
from bakery.base.source import parse_base
from bakery.oci.cache import BlobCache
from bakery.oci.errors import LayoutError, OciError
from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.model import (
    DOCKER_LAYER_GZIP,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_LAYER_GZIP,
    REF_NAME_ANNOTATION,
    Layer,
    Manifest,
    platform_matches,
    sha256_digest,
)
from bakery.oci.reference import DIGEST, Reference
from bakery.oci.registry import DEFAULT_PLATFORM, RegistryClient

_OCI_LAYER_TYPE = {
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}
_CHUNK = 1 << 20


def load_base(
    reference: str,
    cache: BlobCache,
    *,
    platform: str = DEFAULT_PLATFORM,
    fetch_layers: bool = True,
) -> BaseImage:
    """The base image `reference` for `platform`, its config and layers in `cache`.

    With `fetch_layers=False` a registry base's layers are only described, not downloaded
    (unless its Python must be found by scanning them): a bake that publishes to the same
    registry mounts them there and never needs their bytes. `fetch_base_layers` gets them
    later if it does."""
    source = parse_base(reference)
    if source.layout is not None:
        return _LayoutSource(
            reference, source.layout, source.digest, source.tag, cache, platform
        ).load()
    assert source.registry is not None
    ref = source.registry
    with RegistryClient(ref, cache=cache) as client:
        manifest = client.get_manifest(ref.identifier, platform)
        _check_manifest(manifest, str(ref))
        config_digest = manifest.json["config"]["digest"]
        client.get_blob(config_digest)
        labels = (json.loads(cache.path(config_digest).read_bytes()).get("config") or {}).get(
            "Labels"
        ) or {}
        if fetch_layers or VERSION_LABEL not in labels:
            for descriptor in manifest.json["layers"]:
                client.get_blob(descriptor["digest"])
    pinned = ref.with_digest(manifest.digest)
    return _assemble(
        str(pinned), manifest, cache, platform, Reference(ref.registry, ref.repository)
    )


def fetch_base_layers(base: BaseImage, cache: BlobCache) -> None:
    """Download the layers of a registry base that `load_base` only described."""
    missing = [layer for layer in base.layers if not cache.has(layer.digest)]
    if not missing:
        return
    assert base.repository is not None  # layout bases are always copied in full
    with RegistryClient(base.repository, cache=cache) as client:
        for layer in missing:
            client.get_blob(layer.digest)


def layout_digest(directory: Path, tag: str | None) -> str:
    """The manifest digest `tag` names in the layout at `directory`; with no tag, the
    digest of its only image."""
    path = directory / "index.json"
    try:
        manifests = json.loads(path.read_bytes()).get("manifests") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise LayoutError(
            f"cannot read {path}: {exc}; {directory} is not an OCI image layout"
        ) from exc
    tags = {(m.get("annotations") or {}).get(REF_NAME_ANNOTATION): m for m in manifests}
    if tag is None and len(manifests) == 1:
        return manifests[0]["digest"]
    if tag in tags:
        return tags[tag]["digest"]
    known = ", ".join(sorted(str(name) for name in tags)) or "none"
    wanted = f"tag {tag!r}" if tag else "a tag or digest (it holds several images)"
    raise LayoutError(
        f"the OCI layout {directory} has no {wanted}; its tags: {known} — "
        f"use {LAYOUT_SCHEME}{directory}:TAG or @sha256:DIGEST"
    )


class _LayoutSource:
    """Reads one image out of an OCI image-layout directory into the cache."""

    def __init__(
        self,
        reference: str,
        directory: Path,
        digest: str | None,
        tag: str | None,
        cache: BlobCache,
        platform: str,
    ) -> None:
        self.reference = reference
        self.directory, self.digest, self.tag = directory, digest, tag
        self.cache = cache
        self.platform = platform

    def load(self) -> BaseImage:
        digest = self.digest or layout_digest(self.directory, self.tag)
        manifest = self._manifest(digest)
        if manifest.media_type in INDEX_TYPES:
            manifest = self._manifest(self._platform_digest(manifest))
        _check_manifest(manifest, self.reference)
        for descriptor in [manifest.json["config"], *manifest.json["layers"]]:
            self._copy_blob(descriptor["digest"])
        pinned = f"{LAYOUT_SCHEME}{self.directory}@{manifest.digest}"
        return _assemble(pinned, manifest, self.cache, self.platform, None)

    def _platform_digest(self, index: Manifest) -> str:
        for entry in index.json.get("manifests", []):
            if platform_matches(entry.get("platform") or {}, self.platform):
                return entry["digest"]
        raise LayoutError(
            f"{self.reference} is an index with no {self.platform} image; "
            f"pick a base image built for {self.platform}"
        )

    def _manifest(self, digest: str) -> Manifest:
        data = self._read_blob(digest)
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise LayoutError(f"{self.reference}: manifest {digest} is not JSON") from exc
        return Manifest(document.get("mediaType", ""), data)

    def _read_blob(self, digest: str) -> bytes:
        path = self._blob_path(digest)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LayoutError(
                f"{self.reference} names {digest} but {path} is unreadable: {exc}; "
                "the layout is incomplete, publish the image into it again"
            ) from exc
        if sha256_digest(data) != digest:
            raise LayoutError(f"{path} does not match its digest {digest}: the layout is corrupt")
        return data

    def _copy_blob(self, digest: str) -> None:
        if self.cache.has(digest):
            return
        path = self._blob_path(digest)
        try:
            with path.open("rb") as handle:
                self.cache.put_stream(iter(lambda: handle.read(_CHUNK), b""), expected=digest)
        except OSError as exc:
            raise LayoutError(
                f"{self.reference} names blob {digest} but {path} is unreadable: {exc}; "
                "the layout is incomplete, publish the image into it again"
            ) from exc
        except OciError as exc:
            raise LayoutError(f"{path}: {exc.message}") from exc

    def _blob_path(self, digest: str) -> Path:
        if not DIGEST.fullmatch(digest):  # it becomes a path: no traversal, no other algorithm
            raise LayoutError(f"{self.reference} names an invalid blob digest {digest!r}")
        return self.directory / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _check_manifest(manifest: Manifest, where: str) -> None:
    if manifest.media_type not in MANIFEST_TYPES:
        raise OciError(
            f"{where} is a {manifest.media_type or 'schema 1 or unknown'} manifest; "
            "only OCI and Docker v2 image manifests can be a base image"
        )


def _assemble(
    reference: str,
    manifest: Manifest,
    cache: BlobCache,
    platform: str,
    repository: Reference | None,
) -> BaseImage:
    """BaseImage from a manifest whose config and layers are all in `cache`."""
    config_digest = manifest.json["config"]["digest"]
    config = json.loads(cache.path(config_digest).read_bytes())
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
