"""Publish into the local Docker Engine, speaking its HTTP API directly (no SDK, no CLI).

The image is streamed to `POST /images/load` as a docker-archive tar built on the fly from
the blob files (the engine decompresses gzip layers and checks them against the config's
diff_ids). The engine keeps no manifest, so the publisher keeps the manifest it loaded,
per name and tag, in a small state directory; `find` trusts it only while the engine's tag
still points at the same image. References are image IDs (`sha256:<config digest hex>`),
which `docker run` accepts and which never move.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bakery.oci.errors import DaemonError
from bakery.oci.model import Image, sha256_digest
from bakery.oci.publish import Found
from stagekit.files import write_atomic

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_REPOSITORY = "bakery.local/images"
_BLOCK = 512


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "bakery" / "daemon"


class DockerEngine:
    """The few Engine API calls publishing needs, over `DOCKER_HOST` (unix:// or tcp://)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        if self.host.startswith("unix://"):
            transport = httpx.HTTPTransport(uds=self.host.removeprefix("unix://"))
            self._http = httpx.Client(transport=transport, base_url="http://docker", timeout=600)
        elif self.host.startswith("tcp://"):
            base = "http://" + self.host.removeprefix("tcp://")
            self._http = httpx.Client(base_url=base, timeout=600)
        else:
            raise DaemonError(
                f"DOCKER_HOST={self.host} is not supported: use unix:///path/to/docker.sock "
                "or tcp://host:port"
            )

    def close(self) -> None:
        self._http.close()

    def load(self, archive: Iterable[bytes]) -> None:
        """Load a docker-archive tar; the engine reports failures inside a 200 response."""
        response = self._request(
            "POST",
            "/images/load",
            "load an image",
            params={"quiet": "1"},
            headers={"Content-Type": "application/x-tar"},
            content=archive,
        )
        for line in response.text.splitlines():
            message = json.loads(line) if line.strip() else {}
            if "error" in message:
                raise DaemonError(
                    f"Docker Engine at {self.host} refused to load the image: "
                    f"{message['error']}; the image's layers or config are inconsistent"
                )

    def image_id(self, name: str) -> str | None:
        """The ID (config digest) of the image `name` (e.g. `repo:tag`), None if absent."""
        response = self._request("GET", f"/images/{name}/json", f"inspect {name}", ok=(200, 404))
        return response.json()["Id"] if response.status_code == 200 else None

    def _request(
        self, method: str, path: str, what: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DaemonError(
                f"Docker Engine at {self.host} is unreachable ({type(exc).__name__}: {exc}) "
                f"while trying to {what}; is dockerd running? (DOCKER_HOST selects another)"
            ) from exc
        if response.status_code not in ok:
            try:
                detail = response.json().get("message", response.text)
            except ValueError:
                detail = response.text
            raise DaemonError(
                f"Docker Engine at {self.host} could not {what}: HTTP "
                f"{response.status_code} ({detail.strip()[:300]})"
            )
        return response


class DaemonPublisher:
    """Loads images into the Docker Engine as `<repository>:<tag>`."""

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
        manifest = json.loads(data)
        image_id = self.engine.image_id(name)
        # classic image store: ID = config digest; containerd image store: ID = manifest digest
        if image_id not in (manifest["config"]["digest"], sha256_digest(data)):
            return None  # the tag was removed or re-pointed outside this publisher
        return Found(image_id, manifest)

    def resolve(self, tag: str) -> str:
        if self.find(tag) is None:
            raise DaemonError(
                f"no image {self.repository}:{tag} published by bakery in the Docker Engine "
                f"at {self.engine.host}; publish it first"
            )
        return sha256_digest(self._record(f"{self.repository}:{tag}").read_bytes())

    def _record(self, name: str) -> Path:
        return self.state_dir / f"{quote(name, safe='')}.json"


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
        yield from _tar_member(path, blob.size, _chunks(blob.path))
    data = json.dumps(manifest).encode()
    yield from _tar_member("manifest.json", len(data), [data])
    yield b"\0" * (2 * _BLOCK)


def _tar_member(path: str, size: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
    info = tarfile.TarInfo(path)
    info.size, info.mode = size, 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    yield from chunks
    if size % _BLOCK:
        yield b"\0" * (_BLOCK - size % _BLOCK)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk
