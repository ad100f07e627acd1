"""Publish to an OCI registry: blobs first (skip, mount, or upload), manifest, tag last.

The tag is written only after the manifest is stored by digest, and the manifest only after
every blob it names, so a crash at any point never leaves a tag pointing at missing blobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from bakery.oci.errors import RegistryError
from bakery.oci.model import Blob, Image
from bakery.oci.publish import Found
from bakery.oci.reference import Reference
from bakery.oci.registry import RegistryClient

Step = Literal["skipped", "mounted", "uploaded", "manifest", "tagged"]


@dataclass
class PushStats:
    """What publishing cost, summed over every `publish` call of one publisher."""

    uploaded: int = 0
    uploaded_bytes: int = 0
    mounted: int = 0
    skipped: int = 0


class RegistryPublisher:
    """Publishes to one repository; references look like `host:port/repo@sha256:...`.

    `on_step(step, digest)` is called after each blob is settled, after the manifest is
    stored by digest, and after the tag is written: the hook for progress reporting.
    """

    def __init__(
        self,
        repository: Reference | str,
        *,
        client: RegistryClient | None = None,
        on_step: Callable[[Step, str], None] | None = None,
    ) -> None:
        self.client = client or RegistryClient(repository)
        self.ref = self.client.ref
        self.stats = PushStats()
        self._on_step = on_step or (lambda step, digest: None)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def publish(
        self,
        image: Image,
        tag: str,
        *,
        mount_from: Mapping[str, str] | None = None,
        fetch: Callable[[Blob], None] | None = None,
    ) -> str:
        """Push `image` and tag it; `mount_from` maps a blob digest to a repository of the
        same registry known to hold it, so the registry links it instead of receiving it.
        A blob whose file is not local (known only by descriptor) is obtained with `fetch`
        in the rare case that it must be uploaded after all."""
        for blob in image.blobs():
            self._push_blob(blob, (mount_from or {}).get(blob.digest), fetch)
        manifest = image.manifest
        self.client.put_manifest(manifest.digest, manifest.data, manifest.media_type)
        self._on_step("manifest", manifest.digest)
        self.client.put_manifest(tag, manifest.data, manifest.media_type)
        self._on_step("tagged", manifest.digest)
        return str(self.ref.with_digest(manifest.digest))

    def _push_blob(
        self, blob: Blob, source_repo: str | None, fetch: Callable[[Blob], None] | None
    ) -> None:
        if self.client.blob_exists(blob.digest):
            self.stats.skipped += 1
            self._on_step("skipped", blob.digest)
        elif source_repo and self.client.mount_blob(blob.digest, source_repo):
            self.stats.mounted += 1
            self._on_step("mounted", blob.digest)
        else:
            if fetch is not None and not blob.path.exists():
                fetch(blob)
            self.client.upload_blob(blob)
            self.stats.uploaded += 1
            self.stats.uploaded_bytes += blob.size
            self._on_step("uploaded", blob.digest)

    def find(self, tag: str) -> Found | None:
        digest = self.client.manifest_digest(tag)
        if digest is None:
            return None
        manifest = self.client.get_manifest(digest, platform=None)
        return Found(str(self.ref.with_digest(digest)), manifest.json)

    def resolve(self, tag: str) -> str:
        digest = self.client.manifest_digest(tag)
        if digest is None:
            raise RegistryError(
                f"{self.ref.with_tag(tag)} does not exist; publish the image first "
                "(or check the repository name)"
            )
        return digest
