"""The read side of images, as `publish.Publisher` is the write side.

`open_image(reference)` gives one `ImageReader` whether the image lives in a registry
(`host/repo:tag`, `host/repo@sha256:…`, Docker Hub short names), in an OCI image-layout
directory (`oci-layout://DIR[:tag|@sha256:…]`, the form `LayoutPublisher` returns) or in the
local Docker Engine (an image ID `sha256:…`, what `DaemonPublisher` returns). Base
loading, base pinning, `inspect` and the deployer read images only through it, so none of
them branches on where an image lives. Every blob is verified against its digest on its
way into the local BlobCache, and blobs the cache holds are not read again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from bakery.errors import quoted
from bakery.oci.cache import BlobCache
from bakery.oci.errors import LayoutError, OciError
from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.model import (
    INDEX_TYPES,
    REF_NAME_ANNOTATION,
    Manifest,
    platform_matches,
    sha256_digest,
)
from bakery.oci.reference import DIGEST, Reference

if TYPE_CHECKING:
    from bakery.oci.registry import RegistryClient

_CHUNK = 1 << 20


class ImageReader(Protocol):
    """One image reference, opened for reading."""

    reference: str

    @property
    def repository(self) -> Reference | None:
        """The registry repository holding the image's blobs; None for a layout or engine."""

    def manifest(self, platform: str | None) -> Manifest:
        """The reference's manifest; an index is resolved to `platform` (None keeps it)."""

    def fetch(self, digest: str) -> Path:
        """The blob's path in the BlobCache, read and verified unless already there."""

    def fetch_layers(
        self, layers: Sequence[dict[str, Any]], diff_ids: Sequence[str]
    ) -> list[tuple[Path, str]]:
        """Each layer's file and media type: as published, or uncompressed (its diff_id)
        where that is all the source holds (the Docker Engine)."""

    def pinned(self, digest: str) -> str:
        """This image's reference, pinned to manifest `digest`."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def open_image(reference: str, cache: BlobCache | None = None) -> ImageReader:
    """A reader for `reference`; `cache` receives fetched blobs (required to `fetch`)."""
    if reference.startswith(LAYOUT_SCHEME):
        return LayoutReader(reference, cache)
    if DIGEST.fullmatch(reference):
        from bakery.oci.daemon import EngineReader

        return EngineReader(reference, cache)
    return RegistryReader(reference, cache)


class _Closing:
    """What the registry and layout readers share: published layers are fetched as they are."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release by default."""

    def fetch(self, digest: str) -> Path:
        raise NotImplementedError

    def fetch_layers(
        self, layers: Sequence[dict[str, Any]], diff_ids: Sequence[str]
    ) -> list[tuple[Path, str]]:
        return [(self.fetch(layer["digest"]), layer["mediaType"]) for layer in layers]


class RegistryReader(_Closing):
    """An image in a registry, read through one `RegistryClient` (HTTP imported on open)."""

    def __init__(self, reference: str, cache: BlobCache | None) -> None:
        from bakery.oci.registry import RegistryClient

        self.reference = reference
        self.ref = Reference.parse(reference)
        self.repository: Reference | None = Reference(self.ref.registry, self.ref.repository)
        self._client: RegistryClient = RegistryClient(self.ref, cache=cache)

    def manifest(self, platform: str | None) -> Manifest:
        return self._client.get_manifest(self.ref.identifier, platform)

    def fetch(self, digest: str) -> Path:
        return self._client.get_blob(digest).path

    def pinned(self, digest: str) -> str:
        return str(self.ref.with_digest(digest))

    def close(self) -> None:
        self._client.close()


class LayoutReader(_Closing):
    """An image in an OCI image-layout directory: plain files, read and verified."""

    def __init__(self, reference: str, cache: BlobCache | None) -> None:
        self.reference = reference
        self.repository: Reference | None = None
        self.directory, self.tag, self.digest = parse_layout(reference)
        self.cache = cache

    def manifest(self, platform: str | None) -> Manifest:
        manifest = self._manifest(self.digest or layout_digest(self.directory, self.tag))
        if platform is None or manifest.media_type not in INDEX_TYPES:
            return manifest
        for entry in manifest.json.get("manifests", []):
            if platform_matches(entry.get("platform") or {}, platform):
                return self._manifest(entry["digest"])
        raise LayoutError(
            f"{self.reference} is an index with no {platform} image; "
            f"pick a base image built for {platform}"
        )

    def fetch(self, digest: str) -> Path:
        if self.cache is None:
            raise LayoutError(f"cannot fetch blob {digest} of {self.reference}: no BlobCache")
        if not self.cache.has(digest):
            path = self.blob_path(digest)
            try:
                with path.open("rb") as handle:
                    chunks = iter(lambda: handle.read(_CHUNK), b"")
                    self.cache.put_stream(chunks, expected=digest)
            except OSError as exc:
                raise LayoutError(
                    f"{self.reference} names blob {digest} but {path} is unreadable: {exc}; "
                    "the layout is incomplete, publish the image into it again"
                ) from exc
            except OciError as exc:
                raise LayoutError(f"{path}: {exc.message}") from exc
        return self.cache.path(digest)

    def pinned(self, digest: str) -> str:
        return f"{LAYOUT_SCHEME}{self.directory}@{digest}"

    def _manifest(self, digest: str) -> Manifest:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LayoutError(
                f"{self.reference} names {digest} but {path} is unreadable: {exc}; "
                "the layout is incomplete, publish the image into it again"
            ) from exc
        if sha256_digest(data) != digest:
            raise LayoutError(f"{path} does not match its digest {digest}: the layout is corrupt")
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise LayoutError(f"{self.reference}: manifest {digest} is not JSON") from exc
        return Manifest(document.get("mediaType", ""), data)

    def blob_path(self, digest: str) -> Path:
        """Where the layout keeps blob `digest` (not verified: `fetch` verifies)."""
        if not DIGEST.fullmatch(digest):  # it becomes a path: no traversal, no other algorithm
            raise LayoutError(f"{self.reference} names an invalid blob digest {digest!r}")
        return self.directory / "blobs" / "sha256" / digest.removeprefix("sha256:")


def parse_layout(reference: str) -> tuple[Path, str | None, str | None]:
    """`oci-layout://DIR`, `…DIR@sha256:…` or `…DIR:tag` -> (directory, tag, digest).

    A directory whose name has a ':' stays whole; with neither tag nor digest the reference
    names the layout's only image."""
    location = reference.removeprefix(LAYOUT_SCHEME)
    if "@" in location:
        directory, digest = location.rsplit("@", 1)
        if not DIGEST.fullmatch(digest):
            raise LayoutError(
                f"invalid digest {quoted(digest)} in {quoted(LAYOUT_SCHEME + location)}"
            )
        return Path(directory), None, digest
    directory, colon, tag = location.rpartition(":")
    if colon and "/" not in tag and not Path(location).is_dir():
        return Path(directory), tag, None
    return Path(location), None, None


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
