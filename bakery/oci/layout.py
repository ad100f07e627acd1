"""Publish into an OCI image-layout directory: the embedded default, no services needed.

The layout is `oci-layout`, `index.json` and `blobs/sha256/<hex>`. Blobs are hard-linked
from where they already are (the BlobCache) when the filesystem allows, else copied.
index.json is rewritten under a lock and swapped in by rename, so concurrent publishers
and crashes never leave it half-written. References look like
`oci-layout://<absolute dir>@sha256:<manifest digest>` (BuildKit's named-context form).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bakery.errors import room_in
from bakery.oci.errors import LayoutError
from bakery.oci.model import OCI_INDEX, REF_NAME_ANNOTATION, Blob, Image, canonical_json
from bakery.oci.publish import Found
from stagekit.files import atomic_file, exclusive, write_atomic

LAYOUT_SCHEME = "oci-layout://"


class LayoutPublisher:
    """Publishes into `directory`, creating the layout on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).absolute()
        self._blobs = self.directory / "blobs" / "sha256"
        self._index = self.directory / "index.json"

    registry = None

    def close(self) -> None:
        """Nothing to release: the layout is plain files."""

    def publish(self, image: Image, tag: str) -> str:
        """Blobs, then the manifest, then the tag in index.json; a full disk stops it before
        the tag, with only complete blobs written (each goes through a temp file)."""
        with room_in(self.directory, "BAKERY_IMAGE_LAYOUT"):
            return self._publish(image, tag)

    def _publish(self, image: Image, tag: str) -> str:
        self._blobs.mkdir(parents=True, exist_ok=True)
        marker = self.directory / "oci-layout"
        if not marker.exists():
            write_atomic(marker, canonical_json({"imageLayoutVersion": "1.0.0"}))
        for blob in image.blobs():
            self._link_blob(blob)
        manifest = image.manifest
        manifest_path = self._blob_path(manifest.digest)
        if not manifest_path.exists():
            write_atomic(manifest_path, manifest.data)
        entry = {
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": len(manifest.data),
            "annotations": {REF_NAME_ANNOTATION: tag},
        }
        with exclusive(self.directory / ".index.lock"):
            index = self._read_index()
            index["manifests"] = [m for m in index["manifests"] if _tag_of(m) != tag] + [entry]
            write_atomic(self._index, canonical_json(index))
        return self._reference(manifest.digest)

    def find(self, tag: str) -> Found | None:
        entry = self._entry(tag)
        if entry is None:
            return None
        return Found(self._reference(entry["digest"]), self.manifest(entry["digest"]))

    def manifest(self, digest: str) -> dict[str, Any]:
        """The manifest stored under `digest`, parsed."""
        path = self._blob_path(digest)
        try:
            return json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise LayoutError(
                f"the OCI layout {self.directory} has no readable manifest {digest} "
                f"({exc}); publish the image again to repair the layout"
            ) from exc

    def resolve(self, tag: str) -> str:
        entry = self._entry(tag)
        if entry is None:
            raise LayoutError(
                f"no image tagged {tag!r} in the OCI layout {self.directory}; publish it first"
            )
        return entry["digest"]

    def untag(self, tag: str) -> bool:
        """Remove `tag` from index.json (under the index lock); the blobs stay, other tags
        may share them. False if the tag did not exist."""
        if not self._index.exists():
            return False
        with exclusive(self.directory / ".index.lock"):
            index = self._read_index()
            kept = [m for m in index["manifests"] if _tag_of(m) != tag]
            if len(kept) == len(index["manifests"]):
                return False
            index["manifests"] = kept
            write_atomic(self._index, canonical_json(index))
        return True

    def _reference(self, digest: str) -> str:
        return f"{LAYOUT_SCHEME}{self.directory}@{digest}"

    def _entry(self, tag: str) -> dict[str, Any] | None:
        if not self._index.exists():
            return None
        return next((m for m in self._read_index()["manifests"] if _tag_of(m) == tag), None)

    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest.removeprefix("sha256:")

    def _link_blob(self, blob: Blob) -> None:
        target = self._blob_path(blob.digest)
        if target.exists():
            return
        try:
            os.link(blob.path, target)
        except FileExistsError:
            return  # another publisher linked it first; same digest, same bytes
        except OSError:  # another filesystem, or links not allowed here
            with blob.path.open("rb") as source, atomic_file(target) as handle:
                shutil.copyfileobj(source, handle, 1 << 20)

    def _read_index(self) -> dict[str, Any]:
        if not self._index.exists():
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        try:
            index = json.loads(self._index.read_bytes())
            if not isinstance(index.get("manifests"), list):
                raise ValueError("'manifests' is not a list")
            return index
        except (OSError, ValueError, AttributeError) as exc:
            raise LayoutError(
                f"cannot read {self._index}: {exc}; it is not an OCI image index — "
                "fix or remove it (its blobs can stay)"
            ) from exc


def _tag_of(descriptor: dict[str, Any]) -> str | None:
    return (descriptor.get("annotations") or {}).get(REF_NAME_ANNOTATION)
