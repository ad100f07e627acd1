"""Fetch locked artifacts into a content-addressed cache: `<cache>/artifacts/sha256/<hex>`.

A file at a digest path always holds exactly those bytes: downloads go to a temporary file in
the same directory, are verified, and only then renamed into place (atomic on POSIX). So a
crash, a bad mirror or a concurrent worker can leave litter, never a wrong file, and a file
that is present is trusted without re-hashing.
"""

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bakery.errors import ImageBakingException, room_in
from bakery.lock import LockedPackage
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind

Progress = Callable[[int, int], None]
"""Called with (done_bytes, total_bytes) as bytes arrive; total counts artifacts of known size."""
Ready = Callable[[int, Path], None]
"""Called with (index in `packages`, path) as soon as one artifact is present and verified."""

DOWNLOAD_WORKERS = 8
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_CHUNK = 1 << 16
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def artifact_path(cache: Path, sha256: str) -> Path:
    """Where the artifact with this sha256 lives (or will live) in `cache`."""
    if not _SHA256_HEX.match(sha256):
        raise ImageBakingException(f"{sha256!r} is not a sha256 hex digest.")
    return cache / "artifacts" / "sha256" / sha256


def fetch_artifacts(
    packages: Sequence[LockedPackage],
    cache: Path,
    *,
    progress: Progress | None = None,
    workers: int = DOWNLOAD_WORKERS,
    on_ready: Ready | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Make every package's artifact present in `cache`; paths come back in `packages` order.

    `on_ready` lets the next stage start on each artifact while others still download; it
    runs on the downloading thread (on this one for artifacts already cached). A cancelled
    `cancel` stops every download at its next chunk (partial files are removed)."""
    cancel = cancel or CancelToken()
    ready = on_ready or (lambda _index, _path: None)
    paths = [artifact_path(cache, p.sha256) for p in packages]
    if paths:
        with room_in(cache, "BAKERY_CACHE_DIR"):
            paths[0].parent.mkdir(parents=True, exist_ok=True)
    meter = _Meter(sum(p.size or 0 for p in packages), progress, cancel)
    missing = []
    for index, (package, path) in enumerate(zip(packages, paths, strict=True)):
        if path.exists():
            meter.add(package.size or 0)
            ready(index, path)
        else:
            missing.append((index, package, path))
    if missing:
        transport = httpx.HTTPTransport(retries=2)
        with (
            httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=True) as client,
            ThreadPoolExecutor(
                max_workers=max(1, min(workers, len(missing))), thread_name_prefix="bakery-download"
            ) as pool,
        ):

            def fetch(index: int, package: LockedPackage, path: Path) -> None:
                cancel.check()
                _download(client, package, path, meter)
                ready(index, path)

            futures = [pool.submit(fetch, *item) for item in missing]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return paths


class _Meter:
    """Thread-safe byte counter that reports to the caller's progress callback in order; the
    downloads call it for every chunk, so it is also where a cancelled bake stops them."""

    def __init__(self, total: int, callback: Progress | None, cancel: CancelToken) -> None:
        self._done = 0
        self._total = total
        self._callback = callback
        self._cancel = cancel
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        self._cancel.check()
        with self._lock:
            self._done += count
            if self._callback is not None:
                self._callback(self._done, self._total)


def _download(client: httpx.Client, package: LockedPackage, path: Path, meter: _Meter) -> None:
    with room_in(path.parent, "BAKERY_CACHE_DIR"):
        _download_to(client, package, path, meter)


def _download_to(client: httpx.Client, package: LockedPackage, path: Path, meter: _Meter) -> None:
    digest = hashlib.sha256()
    fd, partial = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, client.stream("GET", package.url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                meter.add(len(chunk))
        if digest.hexdigest() != package.sha256:
            raise ImageBakingException(
                f"{package.url} does not match its lock: sha256 {digest.hexdigest()}, expected "
                f"{package.sha256}. The index served other bytes than it listed; re-resolve, "
                "and check the index if it happens again.",
                kind=ErrorKind.UNAVAILABLE,
            )
        os.chmod(partial, 0o444)
        os.replace(partial, path)
    except httpx.HTTPStatusError as exc:
        raise ImageBakingException(
            f"Downloading {package.url} failed: HTTP {exc.response.status_code}. Check that the "
            "index still serves it, or re-resolve.",
            kind=ErrorKind.UNAVAILABLE,
        ) from None
    except httpx.HTTPError as exc:
        raise ImageBakingException(
            f"Downloading {package.url} failed: {exc!r}. Check the network and the index URL.",
            kind=ErrorKind.UNAVAILABLE,
        ) from None
    finally:
        Path(partial).unlink(missing_ok=True)
