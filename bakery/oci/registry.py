"""A client for one repository on an OCI distribution registry (the v2 HTTP API).

Every failure becomes a RegistryError naming the operation, the registry, and a next step,
never a bare httpx traceback.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import ssl
from collections.abc import Callable, Iterator
from typing import NoReturn

import httpx

from bakery.oci.auth import Credentials, RegistryAuth, load_credentials
from bakery.oci.cache import BlobCache
from bakery.oci.errors import OciError, RegistryError
from bakery.oci.model import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Blob,
    Manifest,
    platform_matches,
    sha256_digest,
)
from bakery.oci.reference import Reference
from bakery.platforms import DEFAULT_PLATFORM

ACCEPT_MANIFESTS = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
INSECURE_ENV = "BAKERY_INSECURE_REGISTRIES"
_CHUNK = 1 << 20
_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


def is_insecure(registry: str) -> bool:
    """Plain HTTP for loopback registries and those listed in BAKERY_INSECURE_REGISTRIES."""
    listed = {item.strip() for item in os.environ.get(INSECURE_ENV, "").split(",")}
    host = httpx.URL(f"http://{registry}").host
    if registry in listed or host in listed or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _registry_errors(response: httpx.Response) -> str:
    """The `errors` a distribution registry puts in a failure body, as one line."""
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors)
    except (ValueError, AttributeError):
        return response.text[:200].strip()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~25 ms, more than a whole
    cache-hit bake against a loopback registry."""
    return httpx.create_ssl_context()


class RegistryClient:
    """Reads and writes blobs and manifests of one repository, e.g. `host:5000/team/app`."""

    def __init__(
        self,
        repository: Reference | str,
        *,
        cache: BlobCache | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        ref = Reference.parse(repository) if isinstance(repository, str) else repository
        self.ref = ref
        self.registry = ref.registry
        self.repository = ref.repository
        self.cache = cache
        scheme = "http" if is_insecure(ref.registry) else "https"
        self.base = f"{scheme}://{ref.registry}/v2/{ref.repository}"
        auth = RegistryAuth(ref.registry, credentials or load_credentials(ref.registry))
        self._http = httpx.Client(
            auth=auth, timeout=_TIMEOUT, follow_redirects=True, verify=_tls_context()
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- blobs -------------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        response = self._send("HEAD", f"/blobs/{digest}", f"check blob {digest}", ok=(200, 404))
        return response.status_code == 200

    def mount_blob(self, digest: str, from_repo: str) -> bool:
        """Link a blob from another repository of this registry; False if it was not there."""
        response = self._send(
            "POST",
            "/blobs/uploads/",
            f"mount blob {digest} from {from_repo}",
            ok=(201, 202),
            params={"mount": digest, "from": from_repo},
        )
        if response.status_code == 202:
            self._cancel_upload(response)
        return response.status_code == 201

    def upload_blob(self, blob: Blob, progress: Callable[[int], None] | None = None) -> None:
        """Monolithic upload streamed from the blob's file; `progress` gets bytes sent so far."""
        what = f"upload blob {blob.digest} ({blob.size} bytes)"
        started = self._send("POST", "/blobs/uploads/", what, ok=(202,))
        location = self._location(started, what).copy_merge_params({"digest": blob.digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        try:
            content = _read(blob, progress)
            self._send("PUT", location, what, ok=(201,), headers=headers, content=content)
        except OSError as exc:
            raise RegistryError(
                f"cannot {what} to {self.registry}: reading {blob.path} failed ({exc}); "
                "the local blob cache changed underneath the push, bake the image again"
            ) from exc

    def get_blob(self, digest: str, media_type: str = "application/octet-stream") -> Blob:
        """The blob's bytes in the BlobCache, downloaded and verified unless already there."""
        if self.cache is None:
            raise RegistryError(
                f"cannot fetch blob {digest} from {self.registry}: this client has no BlobCache"
            )
        if not self.cache.has(digest):
            what = f"download blob {digest}"
            try:
                with self._http.stream("GET", f"{self.base}/blobs/{digest}") as response:
                    self._check(response, what, ok=(200,))
                    self.cache.put_stream(response.iter_bytes(_CHUNK), expected=digest)
            except httpx.HTTPError as exc:
                self._transport_failure(exc, what)
            except OciError as exc:
                raise RegistryError(f"cannot {what} from {self.registry}: {exc}") from exc
        return self.cache.blob(digest, media_type)

    # -- manifests ---------------------------------------------------------------------

    def manifest_digest(self, tag_or_digest: str) -> str | None:
        """The digest a tag points at (HEAD), or None if the tag does not exist."""
        response = self._send(
            "HEAD",
            f"/manifests/{tag_or_digest}",
            f"look up {self._at(tag_or_digest)}",
            ok=(200, 404),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if response.status_code == 404:
            return None
        return response.headers.get("Docker-Content-Digest") or self._manifest(tag_or_digest).digest

    def get_manifest(self, tag_or_digest: str, platform: str | None = DEFAULT_PLATFORM) -> Manifest:
        """The image manifest; an index is resolved to `platform` (None keeps the index)."""
        manifest = self._manifest(tag_or_digest)
        if platform is None or manifest.media_type not in INDEX_TYPES:
            return manifest
        for entry in manifest.json.get("manifests", []):
            if platform_matches(entry.get("platform", {}), platform):
                return self._manifest(entry["digest"])
        available = sorted(
            "/".join(filter(None, (p.get("os"), p.get("architecture"), p.get("variant"))))
            for p in (e.get("platform", {}) for e in manifest.json.get("manifests", []))
        )
        raise RegistryError(
            f"{self._at(tag_or_digest)} has no {platform} image "
            f"(it has: {', '.join(available) or 'none'}); pick a base image built for {platform}"
        )

    def put_manifest(self, tag_or_digest: str, data: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns the manifest digest."""
        self._send(
            "PUT",
            f"/manifests/{tag_or_digest}",
            f"write manifest {self._at(tag_or_digest)}",
            ok=(201,),
            headers={"Content-Type": media_type},
            content=data,
        )
        return sha256_digest(data)

    def _manifest(self, tag_or_digest: str) -> Manifest:
        what = f"fetch manifest {self._at(tag_or_digest)}"
        response = self._send(
            "GET", f"/manifests/{tag_or_digest}", what, headers={"Accept": ACCEPT_MANIFESTS}
        )
        data = response.content
        if tag_or_digest.startswith("sha256:") and sha256_digest(data) != tag_or_digest:
            raise RegistryError(
                f"registry {self.registry} sent a manifest for {tag_or_digest} whose digest is "
                f"{sha256_digest(data)}; the registry or a proxy altered it, do not trust it"
            )
        try:
            media_type = json.loads(data).get("mediaType")
        except (ValueError, AttributeError) as exc:
            raise RegistryError(
                f"registry {self.registry} sent a manifest for {tag_or_digest} that is not JSON"
            ) from exc
        header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(media_type or header_type, data)

    # -- plumbing ----------------------------------------------------------------------

    def _at(self, tag_or_digest: str) -> str:
        separator = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{separator}{tag_or_digest}"

    def _cancel_upload(self, response: httpx.Response) -> None:
        """Best effort: an abandoned upload session only costs the registry a little disk."""
        location = response.headers.get("Location")
        if location:
            with contextlib.suppress(httpx.HTTPError):
                self._http.delete(response.url.join(location))

    def _location(self, response: httpx.Response, what: str) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"cannot {what} to {self.registry}: upload session has no Location header; "
                "is this an OCI distribution registry?"
            )
        return response.url.join(location)

    def _send(
        self,
        method: str,
        path_or_url: str | httpx.URL,
        what: str,
        *,
        ok: tuple[int, ...] = (200,),
        **kwargs,
    ) -> httpx.Response:
        url = self.base + path_or_url if isinstance(path_or_url, str) else path_or_url
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._transport_failure(exc, what)
        self._check(response, what, ok)
        return response

    def _check(self, response: httpx.Response, what: str, ok: tuple[int, ...]) -> None:
        if response.status_code in ok:
            return
        response.read()
        status = response.status_code
        detail = _registry_errors(response)
        if status in (401, 403):
            hint = (
                f"check the credentials for {self.registry} in ~/.docker/config.json "
                "(or $DOCKER_CONFIG) — `docker login` writes them — and that they may "
                f"push to {self.repository}"
            )
        elif status == 404:
            hint = f"does {self.registry}/{self.repository} (and that tag or digest) exist?"
        elif status >= 500:
            hint = "the registry failed internally; check its logs and retry"
        else:
            hint = "the registry rejected the request; the details above say why"
        raise RegistryError(
            f"cannot {what} on registry {self.registry}: HTTP {status}"
            + (f" ({detail})" if detail else "")
            + f"; {hint}"
        )

    def _transport_failure(self, exc: httpx.HTTPError, what: str) -> NoReturn:
        if isinstance(exc, httpx.ConnectError) and "SSL" in str(exc):
            hint = (
                f"if {self.registry} serves plain HTTP, add it to {INSECURE_ENV} "
                "(comma-separated hosts)"
            )
        elif isinstance(exc, httpx.ConnectError):
            raise RegistryError(
                f"registry {self.registry} is unreachable: {exc}; is it running?"
            ) from exc
        elif isinstance(exc, httpx.TimeoutException):
            hint = "the registry is slow or overloaded; retry, or check the network to it"
        else:
            hint = "the connection failed mid-request; is the registry still running?"
        raise RegistryError(
            f"cannot {what} on registry {self.registry}: {type(exc).__name__}: {exc}; {hint}"
        ) from exc


def _read(blob: Blob, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    sent = 0
    with blob.path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk
            sent += len(chunk)
            if progress:
                progress(sent)
