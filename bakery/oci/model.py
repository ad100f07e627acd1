"""Immutable OCI value types: blobs on disk, layers, images and their manifests.

Everything an image is made of is a file named by its digest, so publishers only ever
stream files and never hold a layer in memory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


def platform_matches(found: dict[str, Any], platform: str) -> bool:
    """Whether an index entry's `platform` or an image config is `os/arch[/variant]`."""
    os_, _, arch_variant = platform.partition("/")
    arch, _, variant = arch_variant.partition("/")
    if found.get("os") != os_ or found.get("architecture") != arch:
        return False
    return not variant or found.get("variant", variant) == variant


def sha256_digest(data: bytes) -> str:
    """The OCI digest string of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON document, so equal content has one digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """Content-addressed bytes kept in a local file (usually inside a BlobCache)."""

    digest: str
    size: int
    media_type: str
    path: Path

    def descriptor(self) -> dict[str, Any]:
        """The OCI descriptor that points at this blob from a manifest."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Layer(Blob):
    """A compressed filesystem tarball; `diff_id` is the sha256 of the uncompressed tar."""

    diff_id: str


@dataclass(frozen=True)
class Manifest:
    """Manifest or index bytes exactly as stored; the digest is over these bytes."""

    media_type: str
    data: bytes

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @cached_property
    def json(self) -> dict[str, Any]:
        return json.loads(self.data)


@dataclass(frozen=True)
class Image:
    """A single-platform image: config blob, ordered layers and manifest annotations."""

    config: Blob
    layers: tuple[Layer, ...]
    annotations: dict[str, str] = field(default_factory=dict)

    def blobs(self) -> tuple[Blob, ...]:
        """Every blob the manifest points at, in push order (layers, then config)."""
        return (*self.layers, self.config)

    @cached_property
    def manifest(self) -> Manifest:
        """The canonical OCI manifest; deterministic, so an image has one digest."""
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config.descriptor(),
            "layers": [layer.descriptor() for layer in self.layers],
        }
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        return Manifest(OCI_MANIFEST, canonical_json(document))

    @property
    def digest(self) -> str:
        return self.manifest.digest
