"""The code package RPCs: PackageCode and UploadContents.

The client walks and hashes its tree (its stat cache stays there) and offers the file list;
the server answers with the contents it lacks, or, holding them all, with the package.
Received contents live in `contents/<digest[:2]>/<digest>`, one file per blake3 digest,
renamed into place only once their bytes match the digest. A package is assembled by the
packager itself (`store_entries`) from the listed files read out of that content store: the
same entries give the same tarball bytes and key as a local `package_code` of the tree. It
goes to the server's code store (`BAKERY_CODE_STORE`); builds take turns in one work
directory (`packages/` beside `contents/`), reusing the previous tarball's members.

Contents are kept while a package uses them: each file list answered with its package has a
record in `package-lists/<blake3 of the list>` (its digests; its mtime the last time the list
was packaged or recalled), and `prune_contents(unused_for)` (the admin Prune) removes the
contents that no record used within `unused_for` lists, that were not uploaded within it
either (an upload waiting for its list's next offer), and that no PackageCode in flight needs.
"""

import contextlib
import os
import re
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import blake3
import grpc

from frontends.service.metrics import ServiceMetrics
from packager import config
from packager.errors import CodePackagingException, local_failure
from packager.package import check_size, store_entries
from packager.stores import CodeStore, open_store
from packager.tarball import Entry
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.api.calls import status_of
from stagekit.cancel import Cancelled, CancelToken
from stagekit.files import write_atomic
from stagekit.progress import Reporter

LOG_NAME = "bakery.service.packages"
MAX_FILES = 500_000
"""Most files one package may list."""
REMEMBERED_LISTS = 1024
"""File lists whose package key the server keeps in memory (the oldest is forgotten)."""
_Listing = tuple[str, int, bytes]
"""(store URL, size limit, blake3 of the serialized list): what a package key depends on."""
_DIGEST = re.compile("[0-9a-f]{64}")
_BAD_PATH = re.compile(r"(?:^|/)\.{0,2}(?:/|$)|\x00")
"""An empty, '.' or '..' path part, or a NUL."""


class ContentPrune(NamedTuple):
    """Contents a prune removed (or, dry, would remove) and their bytes."""

    contents: int
    bytes: int


class PackageRpcs:
    """PackageCode and UploadContents; received contents are kept under `contents`.

    `calls` counts the calls of each RPC and `bytes_received` the content bytes uploads
    delivered (also counted in `metrics`)."""

    def __init__(self, contents: Path, metrics: ServiceMetrics | None = None) -> None:
        self.contents = contents
        self.metrics = metrics or ServiceMetrics()
        self.workdir = contents.parent / "packages"
        self.incoming = contents / ".incoming"
        self.uses = contents.parent / "package-lists"
        """One record per packaged file list: its digests; its mtime, the list's last use."""
        self.calls: Counter[str] = Counter()
        self.bytes_received = 0
        self._lock = threading.Lock()
        self._stores: dict[str, CodeStore] = {}
        self._packaged: OrderedDict[_Listing, str] = OrderedDict()
        self._in_use: Counter[str] = Counter()
        """Digests the PackageCode calls in flight need; a prune leaves them (under _lock)."""
        for directory in (self.contents, self.workdir, self.incoming, self.uses):
            directory.mkdir(parents=True, exist_ok=True)
        for stale in self.incoming.iterdir():  # a killed server's unfinished uploads
            stale.unlink(missing_ok=True)

    def PackageCode(
        self, request: bakery_pb2.PackageRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.PackageReply:
        self._called("PackageCode")
        with _answering(context):
            store_url, limit = config.code_store_url(), config.max_package_bytes()
            store = self._store(store_url)
            # An unchanged tree offers the list it offered last time: while the store holds
            # that list's package, the answer needs no validation or content lookups again.
            listing = (store_url, limit, blake3.blake3(request.SerializeToString()).digest())
            key = self._recall(listing)
            if key is None or not store.exists(key):
                reporter = Reporter(LOG_NAME)
                entries = _listed_entries(request.files, self.contents)
                check_size(entries, limit, reporter)
                with self._using({entry.digest for entry in entries}):
                    missing = self._missing(entries)
                    if missing:
                        return bakery_pb2.PackageReply(
                            missing=bakery_pb2.MissingContents(blake3=missing)
                        )
                    cancel = _cancel_token(context)
                    key = store_entries(entries, store, self.workdir, [], reporter, cancel).key
                self._remember_packaged(listing, key)
            self._record_use(listing[2].hex(), request.files)
            return bakery_pb2.PackageReply(
                packaged=bakery_pb2.PackagedCode(url=store.url(key), key=key)
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
                        upload = _Upload(_checked_digest(chunk.blake3), str(self.incoming))
                    elif chunk.blake3 != upload.digest:
                        raise CodePackagingException(
                            f"a chunk of {chunk.blake3!r} arrived before the last chunk of "
                            f"{upload.digest}: send each content's chunks in order, then the next"
                        )
                    upload.write(chunk.data, limit)
                    self._received(len(chunk.data))
                    if chunk.last:
                        with self._lock:  # not between a prune's look at the file and its unlink
                            upload.finish(str(self.contents))
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

    def prune_contents(self, unused_for: int, *, dry_run: bool = False) -> ContentPrune:
        """Remove the contents no file list used within the last `unused_for` seconds (with
        `dry_run`, only count them), and the records of lists unused that long. Contents
        uploaded within the window, or needed by a PackageCode in flight, stay."""
        if unused_for <= 0:
            return ContentPrune(0, 0)
        cutoff = time.time() - unused_for
        used: set[str] = set()
        stale: list[Path] = []
        for record in self.uses.iterdir():
            with contextlib.suppress(FileNotFoundError):  # a concurrent prune took it
                if record.stat().st_mtime >= cutoff:
                    used.update(record.read_text().split())
                else:
                    stale.append(record)
        removed = ContentPrune(0, 0)
        for shard in self.contents.iterdir():
            if shard == self.incoming or not shard.is_dir():
                continue
            for content in shard.iterdir():
                if content.name in used:
                    continue
                with self._lock:
                    size = self._unused_size(content, cutoff)
                    if size is None:
                        continue
                    if not dry_run:
                        content.unlink()
                removed = ContentPrune(removed.contents + 1, removed.bytes + size)
        for record in stale if not dry_run else []:
            with contextlib.suppress(FileNotFoundError):
                if record.stat().st_mtime < cutoff:  # not used again meanwhile
                    record.unlink()
        return removed

    def contents_in_use(self) -> int:
        """Distinct contents the PackageCode calls in flight need (what tests read)."""
        with self._lock:
            return len(self._in_use)

    def _unused_size(self, content: Path, cutoff: float) -> int | None:
        """The size of a content a prune may remove, None if it stays (under self._lock)."""
        if self._in_use[content.name]:
            return None
        try:
            stat = content.stat()
        except FileNotFoundError:
            return None
        return stat.st_size if stat.st_mtime < cutoff else None

    @contextmanager
    def _using(self, digests: set[str]) -> Iterator[None]:
        """Inside, a prune leaves `digests` alone: taken before the contents are looked up."""
        with self._lock:
            self._in_use.update(digests)
        try:
            yield
        finally:
            with self._lock:
                self._in_use.subtract(digests)
                for digest in digests:
                    if self._in_use[digest] <= 0:
                        del self._in_use[digest]

    def _record_use(self, name: str, files: Iterable[bakery_pb2.PackageFile]) -> None:
        """The list `name` was packaged now: touch its record, or write it."""
        record = self.uses / name
        try:
            os.utime(record)
        except FileNotFoundError:
            digests = sorted({listed.blake3 for listed in files})
            write_atomic(record, "".join(f"{digest}\n" for digest in digests).encode())

    def _called(self, rpc: str) -> None:
        with self._lock:
            self.calls[rpc] += 1

    def _received(self, size: int) -> None:
        with self._lock:
            self.bytes_received += size
        self.metrics.package_received(size)

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

    def _recall(self, listing: _Listing) -> str | None:
        with self._lock:
            return self._packaged.get(listing)

    def _remember_packaged(self, listing: _Listing, key: str) -> None:
        with self._lock:
            self._packaged[listing] = key
            if len(self._packaged) > REMEMBERED_LISTS:
                self._packaged.popitem(last=False)

    def _store(self, url: str) -> CodeStore:
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


def content_path(contents: str, digest: str) -> str:
    """Where the content with `digest` is kept below the `contents` directory."""
    return f"{contents}/{digest[:2]}/{digest}"


def _checked_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise CodePackagingException(
            f"{digest!r} is not a blake3 digest (64 lowercase hex characters)"
        )
    return digest


def _checked_path(path: str) -> str:
    """A package path as the packager's walk makes them: relative, '/'-separated, no empty,
    '.' or '..' part (a leading '/' is an empty first part), no NUL."""
    if _BAD_PATH.search(path):
        raise CodePackagingException(
            f"file path {path!r} is not relative or has an empty, '.' or '..' part: "
            "give '/'-separated relative paths"
        )
    return path


def _listed_entries(files: Iterable[bakery_pb2.PackageFile], contents: Path) -> list[Entry]:
    """The listed files as the packager's entries (read from the content store), sorted;
    any list the packager's walk could not have made is refused."""
    entries: dict[str, Entry] = {}
    sizes: dict[str, int] = {}
    store = str(contents)  # paths as text: a Path per file would cost more than the rest
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
        content = content_path(store, digest)
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
    """One content being received into a temporary file, hashed as it arrives. Paths are
    text and files raw descriptors: a first upload of a tree is thousands of these."""

    def __init__(self, digest: str, incoming: str) -> None:
        self.digest = digest
        self.size = 0
        self._hasher = blake3.blake3()
        self._temporary = f"{incoming}/{digest}.{uuid.uuid4().hex}"
        self._fd: int | None = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def write(self, data: bytes, limit: int) -> None:
        self.size += len(data)
        if self.size > limit:
            raise CodePackagingException(
                f"content {self.digest} is over {limit} bytes, the package size limit "
                "(BAKERY_CODE_MAX_BYTES of the server)"
            )
        self._hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]  # type: ignore[arg-type]  # open until closed

    def finish(self, contents: str) -> None:
        """Move the content into place if its bytes match its digest."""
        self._close()
        actual = self._hasher.hexdigest()
        if actual != self.digest:
            raise CodePackagingException(
                f"the bytes sent for {self.digest} have the digest {actual}: nothing was "
                "stored for it; send the file's unchanged contents"
            )
        target = content_path(contents, self.digest)
        try:
            os.replace(self._temporary, target)
        except FileNotFoundError:  # the first content of its shard
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(self._temporary, target)

    def discard(self) -> None:
        self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temporary)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
