"""The code package RPCs: PackageCode and UploadContents.

The client walks and hashes its tree (its stat cache stays there) and offers the file list;
the server answers with the contents it lacks, or, holding them all, with the package.
Received contents live in `contents/<digest[:2]>/<digest>`, one file per blake3 digest,
renamed into place only once their bytes match the digest. A package is assembled by the
packager itself (`store_entries`) from the listed files read out of that content store: the
same entries give the same tarball bytes and key as a local `package_code` of the tree. It
goes to the server's code store (`BAKERY_CODE_STORE`); builds take turns in one work
directory (`packages/` beside `contents/`), reusing the previous tarball's members.
"""

import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import blake3
import grpc

from packager import config
from packager.errors import CodePackagingException, local_failure
from packager.package import check_size, store_entries
from packager.stores import CodeStore, open_store
from packager.tarball import Entry
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.api.calls import status_of
from stagekit.cancel import Cancelled, CancelToken
from stagekit.progress import Reporter

LOG_NAME = "bakery.service.packages"
MAX_FILES = 500_000
"""Most files one package may list."""
_DIGEST = re.compile("[0-9a-f]{64}")


class PackageRpcs:
    """PackageCode and UploadContents; received contents are kept under `contents`.

    `calls` counts the calls of each RPC and `bytes_received` the content bytes uploads
    delivered (for metrics)."""

    def __init__(self, contents: Path) -> None:
        self.contents = contents
        self.workdir = contents.parent / "packages"
        self.incoming = contents / ".incoming"
        self.calls: Counter[str] = Counter()
        self.bytes_received = 0
        self._lock = threading.Lock()
        self._stores: dict[str, CodeStore] = {}
        for directory in (self.contents, self.workdir, self.incoming):
            directory.mkdir(parents=True, exist_ok=True)
        for stale in self.incoming.iterdir():  # a killed server's unfinished uploads
            stale.unlink(missing_ok=True)

    def PackageCode(
        self, request: bakery_pb2.PackageRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.PackageReply:
        self._called("PackageCode")
        with _answering(context):
            reporter = Reporter(LOG_NAME)
            entries = _listed_entries(request.files, self.contents)
            check_size(entries, config.max_package_bytes(), reporter)
            missing = self._missing(entries)
            if missing:
                return bakery_pb2.PackageReply(missing=bakery_pb2.MissingContents(blake3=missing))
            packaged = store_entries(
                entries, self._store(), self.workdir, [], reporter, _cancel_token(context)
            )
            return bakery_pb2.PackageReply(
                packaged=bakery_pb2.PackagedCode(url=packaged.url, key=packaged.key)
            )
        raise AssertionError("_answering aborts on every failure")

    def UploadContents(
        self, requests: Iterator[bakery_pb2.ContentChunk], context: grpc.ServicerContext
    ) -> bakery_pb2.UploadReply:
        self._called("UploadContents")
        with _answering(context):
            limit = config.max_package_bytes()
            stored: list[str] = []
            upload: _Upload | None = None
            try:
                for chunk in requests:
                    if upload is None:
                        upload = _Upload(_checked_digest(chunk.blake3), self.incoming)
                    elif chunk.blake3 != upload.digest:
                        raise CodePackagingException(
                            f"a chunk of {chunk.blake3!r} arrived before the last chunk of "
                            f"{upload.digest}: send each content's chunks in order, then the next"
                        )
                    upload.write(chunk.data, limit)
                    self._received(len(chunk.data))
                    if chunk.last:
                        upload.finish(_content_path(self.contents, upload.digest))
                        stored.append(upload.digest)
                        upload = None
                if upload is not None:
                    raise CodePackagingException(
                        f"the upload ended before the last chunk of {upload.digest}"
                    )
            finally:
                if upload is not None:
                    upload.discard()
            return bakery_pb2.UploadReply(stored=stored)
        raise AssertionError("_answering aborts on every failure")

    def _called(self, rpc: str) -> None:
        with self._lock:
            self.calls[rpc] += 1

    def _received(self, size: int) -> None:
        with self._lock:
            self.bytes_received += size

    def _missing(self, entries: list[Entry]) -> list[str]:
        """Digests of listed files not in the content store; a stored content whose size
        differs from the listed one means the list is wrong."""
        missing: dict[str, None] = {}
        for entry in entries:
            try:
                size = os.stat(entry.path).st_size
            except FileNotFoundError:
                missing[entry.digest] = None
                continue
            if size != entry.size:
                raise CodePackagingException(
                    f"{entry.relative!r} is listed with {entry.size} bytes, but its content "
                    f"{entry.digest} has {size}: list each file's real size"
                )
        return list(missing)

    def _store(self) -> CodeStore:
        url = config.code_store_url()
        with self._lock:
            if url not in self._stores:
                self._stores[url] = open_store(url)
            return self._stores[url]


@contextmanager
def _answering(context: grpc.ServicerContext) -> Iterator[None]:
    """A failure inside becomes the status its kind maps to, with the packager's message."""
    try:
        yield
    except CodePackagingException as error:
        context.abort(status_of(error.kind), error.message)
    except Cancelled as stop:
        context.abort(status_of(stop.kind), f"packaging stopped: {stop.message}")
    except OSError as error:  # the server's own disk: state dir, content store, workdir
        context.abort(
            grpc.StatusCode.INTERNAL, local_failure(error, "package on the server").message
        )


def _cancel_token(context: grpc.ServicerContext) -> CancelToken:
    """Stops the work at the call's deadline, or when the client goes away."""
    token = CancelToken.after(context.time_remaining())
    context.add_callback(lambda: token.cancel("the call ended before the package was stored"))
    return token


def _content_path(contents: Path, digest: str) -> Path:
    return contents / digest[:2] / digest


def _checked_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise CodePackagingException(
            f"{digest!r} is not a blake3 digest (64 lowercase hex characters)"
        )
    return digest


def _checked_path(path: str) -> str:
    """A package path as the packager's walk makes them: relative, '/'-separated, no empty,
    '.' or '..' part, no NUL."""
    if not path or path.startswith("/") or "\0" in path:
        raise CodePackagingException(f"file path {path!r} is not a relative path")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise CodePackagingException(
            f"file path {path!r} has an empty, '.' or '..' part: give '/'-separated relative paths"
        )
    return path


def _listed_entries(files: Iterable[bakery_pb2.PackageFile], contents: Path) -> list[Entry]:
    """The listed files as the packager's entries (read from the content store), sorted;
    any list the packager's walk could not have made is refused."""
    entries: dict[str, Entry] = {}
    sizes: dict[str, int] = {}
    for listed in files:
        path = _checked_path(listed.path)
        digest = _checked_digest(listed.blake3)
        if listed.size < 0:
            raise CodePackagingException(f"{path!r} has a negative size {listed.size}")
        if path in entries:
            raise CodePackagingException(f"{path!r} is listed twice")
        if sizes.setdefault(digest, listed.size) != listed.size:
            raise CodePackagingException(
                f"content {digest} is listed with two sizes ({sizes[digest]} and {listed.size})"
            )
        content = str(_content_path(contents, digest))
        entries[path] = Entry(path, listed.executable, digest, listed.size, content)
        if len(entries) > MAX_FILES:
            raise CodePackagingException(f"a package may list at most {MAX_FILES} files")
    if not entries:
        raise CodePackagingException("the file list is empty: there is nothing to package")
    for path in entries:
        parent = path.rpartition("/")[0]
        while parent:
            if parent in entries:
                raise CodePackagingException(
                    f"{parent!r} is listed as a file and as the directory of {path!r}"
                )
            parent = parent.rpartition("/")[0]
    return sorted(entries.values(), key=lambda entry: entry.relative)


class _Upload:
    """One content being received into a temporary file, hashed as it arrives."""

    def __init__(self, digest: str, incoming: Path) -> None:
        self.digest = digest
        self.size = 0
        self._hasher = blake3.blake3()
        fd, name = tempfile.mkstemp(dir=incoming, prefix=f"{digest}.")
        self._temporary = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes, limit: int) -> None:
        self.size += len(data)
        if self.size > limit:
            raise CodePackagingException(
                f"content {self.digest} is over {limit} bytes, the package size limit "
                "(BAKERY_CODE_MAX_BYTES of the server)"
            )
        self._hasher.update(data)
        self._file.write(data)

    def finish(self, target: Path) -> None:
        """Move the content into place if its bytes match its digest."""
        self._file.close()
        actual = self._hasher.hexdigest()
        if actual != self.digest:
            raise CodePackagingException(
                f"the bytes sent for {self.digest} have the digest {actual}: nothing was "
                "stored for it; send the file's unchanged contents"
            )
        target.parent.mkdir(exist_ok=True)
        os.replace(self._temporary, target)

    def discard(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)
