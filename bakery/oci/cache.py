"""A content-addressed directory of blobs, safe to share between concurrent workers.

Blobs live at `<root>/blobs/sha256/<hex>` (the OCI image-layout shape) and only ever appear
there complete and verified: writers fill a temp file in the same directory tree and rename
it into place, which is atomic, so a crash or a bad download never leaves a wrong blob.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from bakery.errors import room_in
from bakery.oci.errors import OciError
from bakery.oci.model import Blob, Layer
from bakery.oci.reference import DIGEST


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 digest and size of a file, read in chunks."""
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    return "sha256:" + digest.hexdigest(), path.stat().st_size


class BlobCache:
    """Blobs by digest under `root`; `put_*` are idempotent and atomic."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / "tmp"
        with self._room():
            self._tmp.mkdir(parents=True, exist_ok=True)
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def _room(self) -> AbstractContextManager[None]:
        """A full disk under the cache says so; writers clean up their temp files."""
        return room_in(self.root, "BAKERY_CACHE_DIR")

    def path(self, digest: str) -> Path:
        """Where the blob `digest` is (or would be) stored."""
        if not DIGEST.fullmatch(digest):  # it becomes a path: hex only, no traversal
            raise OciError(f"unsupported digest {digest!r}: only sha256 digests are stored")
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, tmp_path: Path) -> str:
        """Move `tmp_path` into the cache under its digest; it must be on the same filesystem."""
        digest, _ = file_digest(tmp_path)
        os.replace(tmp_path, self.path(digest))
        return digest

    def put_bytes(self, data: bytes) -> str:
        return self.put_stream([data])

    def put_stream(self, chunks: Iterable[bytes], expected: str | None = None) -> str:
        """Store streamed bytes; with `expected`, refuse (and keep nothing) on a mismatch."""
        hasher = hashlib.sha256()
        with self._room():
            fd, name = tempfile.mkstemp(dir=self._tmp)
        tmp = Path(name)
        try:
            with self._room(), os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    hasher.update(chunk)
                    handle.write(chunk)
            digest = "sha256:" + hasher.hexdigest()
            if expected is not None and digest != expected:
                raise OciError(
                    f"content does not match its digest: expected {expected}, got {digest}; "
                    "the source served corrupt or different bytes, nothing was cached"
                )
            os.replace(tmp, self.path(digest))
            return digest
        finally:
            tmp.unlink(missing_ok=True)

    def temp_path(self) -> Path:
        """A fresh path on the cache's filesystem, for builders that then call `put_file`."""
        with self._room():
            fd, name = tempfile.mkstemp(dir=self._tmp)
        os.close(fd)
        return Path(name)

    def blob(self, digest: str, media_type: str) -> Blob:
        path = self.path(digest)
        return Blob(digest, path.stat().st_size, media_type, path)

    def layer(self, digest: str, media_type: str, diff_id: str) -> Layer:
        path = self.path(digest)
        return Layer(digest, path.stat().st_size, media_type, path, diff_id)
