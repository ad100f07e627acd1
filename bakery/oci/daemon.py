"""The local Docker Engine as a publish target and as an image source, via the Docker SDK.

Publishing streams a docker-archive tar (reprotar's headers over the blob files) to the
engine's image load; the engine decompresses gzip layers and checks them against the
config's diff_ids. The engine keeps no manifest, so the publisher keeps the manifest it
loaded, per name and tag, in a small state directory; `find` trusts it only while the
engine's tag still points at the same image. References are image IDs
(`sha256:<config digest hex>`), which `docker run` accepts and which never move.

Reading (`EngineReader`, what `open_image` returns for an image ID) finds that kept manifest
again by the image's ID, and blobs in the bakery's cache; what the cache lost comes out of the
engine's export (`docker save`), where layers are uncompressed (their diff_ids).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from bakery.oci.cache import BlobCache
from bakery.oci.errors import DaemonError
from bakery.oci.model import OCI_LAYER, Image, Manifest, sha256_digest
from bakery.oci.publish import Found
from bakery.oci.reference import Reference
from reprotar import END_OF_ARCHIVE, file_header, padding
from stagekit.files import write_atomic

if TYPE_CHECKING:
    import docker

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_REPOSITORY = "bakery.local/images"
_CHUNK = 1 << 20


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "bakery" / "daemon"


class DockerEngine:
    """The engine `DOCKER_HOST` names (unix:// or tcp://), connected on first use."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        self._api: docker.APIClient | None = None

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            import docker

            with self._errors("connect"):
                self._api = docker.APIClient(base_url=self.host, timeout=600)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()

    def load(self, archive: Iterable[bytes]) -> None:
        """Load a docker-archive tar; the engine reports failures inside its answer."""
        with self._errors("load an image"):
            for message in self.api.load_image(_Stream(iter(archive)), quiet=True):
                if "error" in message:
                    raise DaemonError(
                        f"Docker Engine at {self.host} refused to load the image: "
                        f"{message['error']}; the image's layers or config are inconsistent"
                    )

    def image_id(self, name: str) -> str | None:
        """The ID of the image `name` (e.g. `repo:tag`), None if absent."""
        from docker.errors import ImageNotFound

        with self._errors(f"inspect {name}"):
            try:
                return self.api.inspect_image(name)["Id"]
            except ImageNotFound:
                return None

    def save(self, image_id: str) -> io.BufferedReader:
        """The engine's export of an image (`docker save`), as a readable stream."""
        with self._errors(f"export {image_id}"):
            return io.BufferedReader(_Stream(self.api.get_image(image_id, chunk_size=_CHUNK)))

    def _errors(self, what: str) -> _EngineErrors:
        return _EngineErrors(self.host, what)


class _EngineErrors:
    """Maps the SDK's failures to DaemonError: unreachable engine, refused request."""

    def __init__(self, host: str, what: str) -> None:
        self.host, self.what = host, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: Any, _tb: object) -> None:
        import requests
        from docker.errors import APIError, DockerException

        if isinstance(error, APIError):
            raise DaemonError(
                f"Docker Engine at {self.host} refused to {self.what}: {error.explanation or error}"
            ) from None
        if isinstance(error, DockerException | requests.ConnectionError):
            raise DaemonError(
                f"Docker Engine at {self.host} is unreachable ({error}); is dockerd running? "
                "Start it, or set DOCKER_HOST to the engine's socket"
            ) from None


class DaemonPublisher:
    """Loads images into the Docker Engine as `<repository>:<tag>`."""

    registry = None

    def __init__(
        self,
        repository: str = DEFAULT_REPOSITORY,
        *,
        engine: DockerEngine | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.repository = repository
        self.engine = engine or DockerEngine()
        self.state_dir = state_dir or default_state_dir()
        self._owns_engine = engine is None

    def close(self) -> None:
        """Close the engine connection if this publisher opened it."""
        if self._owns_engine:
            self.engine.close()

    def publish(self, image: Image, tag: str) -> str:
        name = f"{self.repository}:{tag}"
        self.engine.load(_docker_archive(image, name))
        write_atomic(self._record(name), image.manifest.data)
        image_id = self.engine.image_id(name)
        if image_id is None:
            raise DaemonError(
                f"Docker Engine at {self.engine.host} loaded the image but has no {name}; "
                "was it removed concurrently? publish again"
            )
        return image_id

    def find(self, tag: str) -> Found | None:
        name = f"{self.repository}:{tag}"
        try:
            data = self._record(name).read_bytes()
        except FileNotFoundError:
            return None
        image_id = self.engine.image_id(name)
        if image_id not in _ids(data):
            return None  # the tag was removed or re-pointed outside this publisher
        return Found(image_id, json.loads(data))

    def resolve(self, tag: str) -> str:
        if self.find(tag) is None:
            raise DaemonError(
                f"no image {self.repository}:{tag} published by bakery in the Docker Engine "
                f"at {self.engine.host}; publish it first"
            )
        return sha256_digest(self._record(f"{self.repository}:{tag}").read_bytes())

    def kept_manifest(self, image_id: str) -> Manifest | None:
        """The manifest this machine's publishers loaded as image `image_id`, if any."""
        for record in sorted(self.state_dir.glob("*.json")):
            data = record.read_bytes()
            if image_id in _ids(data):
                return Manifest(json.loads(data).get("mediaType", ""), data)
        return None

    def _record(self, name: str) -> Path:
        return self.state_dir / f"{quote(name, safe='')}.json"


class EngineReader:
    """An image in the local Docker Engine, named by its ID (`bake_image(target="daemon")`)."""

    def __init__(self, image_id: str, cache: BlobCache | None) -> None:
        self.reference = image_id
        self.repository: Reference | None = None
        self.cache = cache
        self._publisher = DaemonPublisher()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._publisher.close()

    def manifest(self, platform: str | None) -> Manifest:
        if self._publisher.engine.image_id(self.reference) is None:
            raise DaemonError(
                f"image {self.reference} is not in the Docker Engine (removed since it was "
                "baked?); bake it again with target='daemon'"
            )
        manifest = self._publisher.kept_manifest(self.reference)
        if manifest is None:
            raise DaemonError(
                f"image {self.reference} in the Docker Engine was not published by bakery on "
                "this machine (no manifest kept for it); run an image bake_image returned"
            )
        return manifest

    def fetch(self, digest: str) -> Path:
        (path,) = self._from_cache_or_engine([[(digest, "")]])
        return path[0]

    def fetch_layers(
        self, layers: Sequence[dict[str, Any]], diff_ids: Sequence[str]
    ) -> list[tuple[Path, str]]:
        """Each layer as published (from the cache) or uncompressed (from the engine)."""
        forms = [
            [(layer["digest"], layer["mediaType"]), (diff_id, OCI_LAYER)]
            for layer, diff_id in zip(layers, diff_ids, strict=True)
        ]
        return self._from_cache_or_engine(forms)

    def pinned(self, digest: str) -> str:
        return self.reference

    def _from_cache_or_engine(
        self, forms: Sequence[Sequence[tuple[str, str]]]
    ) -> list[tuple[Path, str]]:
        """For each blob, the first of its forms (digest, media type) the cache holds, after
        one pass over the engine's export for the blobs no form of which it holds."""
        if self.cache is None:
            raise DaemonError(f"cannot read blobs of {self.reference}: no BlobCache")
        cache = self.cache
        absent = {d for form in forms if not any(cache.has(d) for d, _ in form) for d, _ in form}
        if absent:
            _keep_from_export(self._publisher.engine.save(self.reference), absent, cache)
        found = []
        for form in forms:
            present = [(cache.path(d), media_type) for d, media_type in form if cache.has(d)]
            if not present:
                raise DaemonError(
                    f"the Docker Engine's copy of image {self.reference} lacks {form[0][0]}; "
                    "bake the image again"
                )
            found.append(present[0])
        return found


def _ids(manifest_data: bytes) -> tuple[str, str]:
    """The IDs an engine gives a loaded image: the config digest (classic image store) or
    the manifest digest (containerd image store)."""
    return json.loads(manifest_data)["config"]["digest"], sha256_digest(manifest_data)


def _keep_from_export(export: io.BufferedReader, wanted: Collection[str], cache: BlobCache) -> None:
    """Read an engine export through once; files whose sha256 is `wanted` go into `cache`."""
    import tarfile

    with export, tarfile.open(fileobj=export, mode="r|") as archive:
        for member in archive:
            source = archive.extractfile(member) if member.isfile() else None
            if source is None:
                continue
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


def _docker_archive(image: Image, name: str) -> Iterator[bytes]:
    """The `docker save` format, streamed: blob files plus a manifest.json naming them."""
    entries = {f"blobs/sha256/{b.digest.removeprefix('sha256:')}": b for b in image.blobs()}
    manifest = [
        {
            "Config": f"blobs/sha256/{image.config.digest.removeprefix('sha256:')}",
            "RepoTags": [name],
            "Layers": [
                f"blobs/sha256/{layer.digest.removeprefix('sha256:')}" for layer in image.layers
            ],
        }
    ]
    for path, blob in entries.items():
        yield file_header(path, blob.size, 0o644)
        with blob.path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
        yield padding(blob.size)
    data = json.dumps(manifest).encode()
    yield file_header("manifest.json", len(data), 0o644)
    yield data + padding(len(data))
    yield END_OF_ARCHIVE


class _Stream(io.RawIOBase):
    """A readable file over an iterator of byte chunks: the SDK posts a file-like body in
    chunks, and `tarfile` reads the engine's export through one."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
