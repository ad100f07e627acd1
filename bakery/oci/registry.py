"""A client for one repository on an OCI distribution registry (the v2 HTTP API).

Every failure becomes a RegistryError naming the operation, the registry, and a next step,
never a bare httpx traceback.

Transient failures (5xx, 429, a dropped or refused connection) are retried, with exponential
backoff and jitter or the registry's Retry-After, at most ATTEMPTS times per operation. Every
operation here is idempotent as a whole: reads, a manifest PUT (same bytes, same result), a
mount, and a monolithic blob upload, which is retried from a new upload session (the blob is
addressed by its digest, so a second upload of it changes nothing). docker-registry's
filesystem storage answers 500 for a blob, or "blob unknown" for a manifest's blob, while
another client rewrites that blob's link in the same repository: concurrent bakes do that
all the time, so those count as transient too.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import functools
import ipaddress
import json
import math
import os
import ssl
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar, overload

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
from stagekit.errors import ErrorKind

ACCEPT_MANIFESTS = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
INSECURE_ENV = "BAKERY_INSECURE_REGISTRIES"
ATTEMPTS = 5
"""Tries per registry operation before a transient failure is reported."""
_CHUNK = 1 << 20
_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_MAX_RETRY_AFTER = 30.0
_T = TypeVar("_T")


class _Transient(RegistryError):
    """A failure another attempt may not have: `retry_after` is the registry's wish, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _backoff(error: Exception) -> bool | float:
    """stamina's hook: retry transient failures, after Retry-After when the registry said."""
    if not isinstance(error, _Transient):
        return False
    return True if error.retry_after is None else error.retry_after


@functools.cache
def _retrying_caller() -> Callable[[Callable[[], Any]], Any]:
    """Backoff 0.25 s, 0.5 s, 1 s, 2 s (+ up to 0.5 s jitter each): about 4-6 s before giving
    up. stamina (and tenacity) load on first use: ~25 ms that a cache hit on a layout skips."""
    import stamina

    return stamina.RetryingCaller(
        attempts=ATTEMPTS, timeout=None, wait_initial=0.25, wait_max=8.0, wait_jitter=0.5
    ).on(_backoff)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (it may be a number or an HTTP date), capped."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER) if not math.isnan(seconds) else None


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


_KINDS = {
    401: ErrorKind.INVALID_INPUT,  # wrong or missing credentials: fix them, do not retry
    403: ErrorKind.INVALID_INPUT,
    404: ErrorKind.NOT_FOUND,
}
"""What a refused request means to a caller; anything else a registry refuses is unavailable."""


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
        """Monolithic upload streamed from the blob's file; `progress` gets bytes sent so far.

        A transient failure restarts it from a new upload session."""
        what = f"upload blob {blob.digest} ({blob.size} bytes)"
        self._retrying(lambda: self._upload_once(blob, progress, what))

    def _upload_once(self, blob: Blob, progress: Callable[[int], None] | None, what: str) -> None:
        started = self._send_once("POST", "/blobs/uploads/", what, ok=(202,))
        location = self._location(started, what).copy_merge_params({"digest": blob.digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        try:
            content = _read(blob, progress)
            self._send_once("PUT", location, what, ok=(201,), headers=headers, content=content)
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
            self._retrying(lambda: self._download_once(digest))
        return self.cache.blob(digest, media_type)

    def _download_once(self, digest: str) -> None:
        """One streamed download into the cache, which keeps nothing unless it is complete."""
        assert self.cache is not None  # get_blob checked
        what = f"download blob {digest}"
        try:
            with self._http.stream("GET", f"{self.base}/blobs/{digest}") as response:
                self._check(response, what, ok=(200,))
                self.cache.put_stream(response.iter_bytes(_CHUNK), expected=digest)
        except httpx.HTTPError as exc:
            self._transport_failure(exc, what)
        except OciError as exc:
            raise RegistryError(f"cannot {what} from {self.registry}: {exc}") from exc

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
        """Store a manifest under a tag or its digest; returns the manifest digest.

        "Blob unknown" is retried: the caller has settled every blob first, so it means
        another client is rewriting that blob's link in this repository right now."""
        self._send(
            "PUT",
            f"/manifests/{tag_or_digest}",
            f"write manifest {self._at(tag_or_digest)}",
            ok=(201,),
            transient_codes=("MANIFEST_BLOB_UNKNOWN",),
            headers={"Content-Type": media_type},
            content=data,
        )
        return sha256_digest(data)

    def delete_manifest(self, digest: str) -> bool:
        """Delete the manifest stored under `digest` and with it every tag pointing at it
        (registry 2.8 deletes by digest only, and only with `storage.delete.enabled`);
        False if there was none."""
        response = self._send(
            "DELETE",
            f"/manifests/{digest}",
            f"delete manifest {self._at(digest)}",
            ok=(202, 404, 405),
        )
        if response.status_code == 405:
            raise RegistryError(
                f"registry {self.registry} does not allow deleting manifests; enable it in "
                "its config (`storage: delete: enabled: true`) to prune its tags",
                kind=ErrorKind.INTERNAL,
            )
        return response.status_code == 202

    def find_manifest(self, tag_or_digest: str) -> Manifest | None:
        """The manifest a tag points at as stored (an index stays an index), or None if the
        tag does not exist: one GET where `manifest_digest` + `get_manifest` take two."""
        return self._manifest(tag_or_digest, missing_ok=True)

    @overload
    def _manifest(self, tag_or_digest: str) -> Manifest: ...
    @overload
    def _manifest(self, tag_or_digest: str, *, missing_ok: bool) -> Manifest | None: ...
    def _manifest(self, tag_or_digest: str, *, missing_ok: bool = False) -> Manifest | None:
        what = f"fetch manifest {self._at(tag_or_digest)}"
        response = self._send(
            "GET",
            f"/manifests/{tag_or_digest}",
            what,
            ok=(200, 404) if missing_ok else (200,),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if response.status_code == 404:
            return None
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

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """`attempt()`, tried again after a transient failure, at most ATTEMPTS times."""
        try:
            return _retrying_caller()(attempt)
        except _Transient as exc:
            raise RegistryError(f"{exc.message} (gave up after {ATTEMPTS} attempts)") from exc

    def _send(
        self,
        method: str,
        path_or_url: str | httpx.URL,
        what: str,
        *,
        ok: tuple[int, ...] = (200,),
        transient_codes: tuple[str, ...] = (),
        **kwargs,
    ) -> httpx.Response:
        """One idempotent request, retried while it fails transiently; `content` must be
        bytes (a stream could not be sent again)."""
        return self._retrying(
            lambda: self._send_once(
                method, path_or_url, what, ok=ok, transient_codes=transient_codes, **kwargs
            )
        )

    def _send_once(
        self,
        method: str,
        path_or_url: str | httpx.URL,
        what: str,
        *,
        ok: tuple[int, ...] = (200,),
        transient_codes: tuple[str, ...] = (),
        **kwargs,
    ) -> httpx.Response:
        url = self.base + path_or_url if isinstance(path_or_url, str) else path_or_url
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._transport_failure(exc, what)
        self._check(response, what, ok, transient_codes)
        return response

    def _check(
        self,
        response: httpx.Response,
        what: str,
        ok: tuple[int, ...],
        transient_codes: tuple[str, ...] = (),
    ) -> None:
        if response.status_code in ok:
            return
        response.read()
        status = response.status_code
        detail = _registry_errors(response)
        transient = status in _RETRY_STATUSES or any(code in detail for code in transient_codes)
        if status == 429:
            hint = "the registry is limiting the request rate; retry later"
        elif status in (401, 403):
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
        message = (
            f"cannot {what} on registry {self.registry}: HTTP {status}"
            + (f" ({detail})" if detail else "")
            + f"; {hint}"
        )
        if transient:
            raise _Transient(message, _retry_after(response))
        raise RegistryError(message, kind=_KINDS.get(status))

    def _transport_failure(self, exc: httpx.HTTPError, what: str) -> NoReturn:
        """A typed error for a failed exchange: refused, reset or dropped connections are
        transient (a restarting or overloaded registry); TLS mismatches and timeouts not."""
        tls_mismatch = isinstance(exc, httpx.ConnectError) and "SSL" in str(exc)
        if tls_mismatch:
            hint = (
                f"if {self.registry} serves plain HTTP, add it to {INSECURE_ENV} "
                "(comma-separated hosts)"
            )
        elif isinstance(exc, httpx.ConnectError):
            raise _Transient(
                f"registry {self.registry} is unreachable: {exc}; is it running?"
            ) from exc
        elif isinstance(exc, httpx.TimeoutException):
            hint = "the registry is slow or overloaded; retry, or check the network to it"
        else:
            hint = "the connection failed mid-request; is the registry still running?"
        message = f"cannot {what} on registry {self.registry}: {type(exc).__name__}: {exc}; {hint}"
        if not tls_mismatch and isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            raise _Transient(message) from exc
        raise RegistryError(message) from exc


def _read(blob: Blob, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    sent = 0
    with blob.path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk
            sent += len(chunk)
            if progress:
                progress(sent)
