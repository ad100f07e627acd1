"""The bake's layers of an image in the local Docker Engine (`bake_image(target="daemon")`).

The engine hands an image out only as `docker save` does: a tar of its files, laid out by
the engine's version (`<id>/layer.tar` files, or an OCI layout of blobs), with layers
uncompressed or as they were pushed. So the stream is read through once, each file hashed on
its way into a temp file of the blob cache, and kept only when its digest is one of the
wanted layers' (compressed digest or uncompressed diff_id); the base's files are read past.
"""

import hashlib
import io
import os
import tarfile
from collections.abc import Collection, Iterator
from typing import IO

import requests

from bakery.oci.cache import BlobCache
from deployer.exceptions import AppConfigError, BackendUnhealthyException
from deployer.runtimes.docker.engine import connect

_CHUNK = 1 << 20


def save_blobs(image_id: str, digests: Collection[str], cache: BlobCache) -> None:
    """Store the files of `docker save image_id` whose sha256 is in `digests` in `cache`;
    callers check which they got (a layer is there compressed or uncompressed)."""
    from docker.errors import APIError

    try:
        chunks = connect().api.get_image(image_id, chunk_size=_CHUNK)
        with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as archive:
            for member in archive:
                source = archive.extractfile(member) if member.isfile() else None
                if source is not None:
                    _keep(source, digests, cache)
    except APIError as error:
        raise AppConfigError(
            f"the Docker Engine cannot hand out image {image_id} "
            f"({error.explanation or error}); bake it again"
        ) from None
    except (tarfile.TarError, requests.RequestException) as error:
        raise BackendUnhealthyException(
            "docker", f"reading image {image_id} from the Docker Engine failed: {error}"
        ) from None


def _keep(source: IO[bytes], wanted: Collection[str], cache: BlobCache) -> None:
    """Hash `source` into a temp file; move it into `cache` if wanted, else drop it."""
    temp = cache.temp_path()
    try:
        hasher = hashlib.sha256()
        with temp.open("wb") as out:
            while chunk := source.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        digest = f"sha256:{hasher.hexdigest()}"
        if digest in wanted:
            os.replace(temp, cache.path(digest))
    finally:
        temp.unlink(missing_ok=True)


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks, for `tarfile`'s stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
