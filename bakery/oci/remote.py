"""Publish to an OCI registry: blobs first (skip, mount, or upload), manifest, tag last.

The tag is written only after the manifest is stored by digest, and the manifest only after
every blob it names, so a crash at any point never leaves a tag pointing at missing blobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from bakery.oci.errors import RegistryError
from bakery.oci.model import Blob, Image
from bakery.oci.publish import Found
from bakery.oci.reference import Reference
from bakery.oci.registry import RegistryClient

Step = Literal["skipped", "mounted", "uploaded", "manifest", "tagged"]
BlobStep = Literal["skipped", "mounted", "uploaded"]
PARALLEL_BLOBS = 8
"""Blobs settled at once: each costs several round trips, so small layers are latency-bound."""


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
        self._fetching = threading.Lock()
        self._pool = ThreadPoolExecutor(PARALLEL_BLOBS, thread_name_prefix="bakery-push")
        self._ahead: dict[str, Future[BlobStep]] = {}

    @property
    def registry(self) -> str:
        return self.ref.registry

    def close(self) -> None:
        """Stop pushes not yet started, wait for the running ones, close the connection."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def __enter__(self) -> RegistryPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def push_ahead(
        self,
        blobs: Iterable[Blob],
        *,
        mount_from: Mapping[str, str] | None = None,
        fetch: Callable[[Blob], None] | None = None,
    ) -> None:
        """Start settling blobs known before the image is (a base's layers) in the
        background, so they travel while the rest is resolved and built; `publish` waits
        for them and reports their failures. Blobs without a manifest are harmless."""
        for blob in blobs:
            if blob.digest not in self._ahead:
                source = (mount_from or {}).get(blob.digest)
                self._ahead[blob.digest] = self._pool.submit(self._push_blob, blob, source, fetch)

    def publish(
        self,
        image: Image,
        tag: str,
        *,
        mount_from: Mapping[str, str] | None = None,
        fetch: Callable[[Blob], None] | None = None,
        before_tag: Callable[[], None] | None = None,
    ) -> str:
        """Push `image` and tag it; `mount_from` maps a blob digest to a repository of the
        same registry known to hold it, so the registry links it instead of receiving it.
        A blob whose file is not local (known only by descriptor) is obtained with `fetch`
        in the rare case that it must be uploaded after all. `before_tag` runs once every
        blob and the manifest are stored: raising there (a cancelled bake) leaves no tag."""
        self.push_ahead(image.blobs(), mount_from=mount_from, fetch=fetch)
        self._settle(image.blobs())
        manifest = image.manifest
        self.client.put_manifest(manifest.digest, manifest.data, manifest.media_type)
        self._on_step("manifest", manifest.digest)
        if before_tag is not None:
            before_tag()
        self.client.put_manifest(tag, manifest.data, manifest.media_type)
        self._on_step("tagged", manifest.digest)
        return str(self.ref.with_digest(manifest.digest))

    def _settle(self, blobs: Iterable[Blob]) -> None:
        """Wait for every blob's push; stats and `on_step` stay on this thread.

        On the first failure the pushes not yet started are cancelled and that error is
        raised, so the manifest and tag are never written."""
        unique = {blob.digest: blob for blob in blobs}
        pending = {self._ahead.pop(digest): blob for digest, blob in unique.items()}
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                blob = pending.pop(future)
                if (error := future.exception()) is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                self._record(future.result(), blob)

    def _record(self, step: BlobStep, blob: Blob) -> None:
        if step == "uploaded":
            self.stats.uploaded += 1
            self.stats.uploaded_bytes += blob.size
        elif step == "mounted":
            self.stats.mounted += 1
        else:
            self.stats.skipped += 1
        self._on_step(step, blob.digest)

    def _push_blob(
        self, blob: Blob, source_repo: str | None, fetch: Callable[[Blob], None] | None
    ) -> BlobStep:
        if self.client.blob_exists(blob.digest):
            return "skipped"
        if source_repo and self.client.mount_blob(blob.digest, source_repo):
            return "mounted"
        if fetch is not None:
            with self._fetching:  # one fetch at a time: it may get several blobs at once
                if not blob.path.exists():
                    fetch(blob)
        self.client.upload_blob(blob)
        return "uploaded"

    def find(self, tag: str) -> Found | None:
        manifest = self.client.find_manifest(tag)
        if manifest is None:
            return None
        return Found(str(self.ref.with_digest(manifest.digest)), manifest.json)

    def resolve(self, tag: str) -> str:
        digest = self.client.manifest_digest(tag)
        if digest is None:
            raise RegistryError(
                f"{self.ref.with_tag(tag)} does not exist; publish the image first "
                "(or check the repository name)"
            )
        return digest

    def untag(self, tag: str) -> bool:
        """Remove `tag` by deleting the manifest it points at (what registry 2.8 supports:
        other tags of the same manifest go too); False if the tag did not exist."""
        digest = self.client.manifest_digest(tag)
        return digest is not None and self.client.delete_manifest(digest)
