"""package_code on a Bakery server (`service=` or `BAKERY_URL`), for callers without store
credentials.

The tree is walked and hashed here with the packager's own selection and stat cache, so an
unchanged tree is not re-read. The server gets the file list (path, executable bit, size,
blake3) and answers with the package, or with the contents it lacks; only those are sent,
in chunks, and the list is offered again. An unchanged tree costs one call and no file
bytes. grpc and the stubs are imported when a package is made, never by `import packager`.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from packager.cancelling import reported
from packager.errors import CodePackagingException, local_failure
from packager.hashing import file_digest
from packager.members import changed
from packager.model import PackagedCode
from packager.package import LOG_NAME, check_size, select_entries, source_roots
from packager.request import PackageRequest
from packager.tarball import Entry
from packager.walk import SourceFile
from packager.workers import worker_pool
from stagekit.cancel import Cancelled, CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import Reporter

if TYPE_CHECKING:
    from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc

CHUNK_BYTES = 1024 * 1024
"""File bytes per uploaded message."""
CALL_SECONDS = 600.0
"""Deadline of each call when the caller's own (`timeout=`) is later or unset."""
_ROUNDS = 3
"""List offers before giving up on a server that keeps asking for contents."""
_IDEMPOTENT = (("bakery.v1.Bakery", "PackageCode"), ("bakery.v1.Bakery", "UploadContents"))


def package_remote(
    request: PackageRequest,
    url: str,
    *,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> PackagedCode:
    """Make the package `request` describes on the Bakery server at `url` (grpc://host:port
    or grpcs://host:port) and store it in the server's code store. The key is the one a
    local `package` of the same tree gives. `request.store` is not used: the server decides
    where packages go."""
    with reported(f"packaging {', '.join(request.src_paths)} on {url}"):
        return _package_remote(
            request, url, reporter or Reporter(LOG_NAME), cancel or CancelToken()
        )


def _package_remote(
    request: PackageRequest, url: str, reporter: Reporter, cancel: CancelToken
) -> PackagedCode:
    from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
    from stagekit.api.calls import shared_channel

    roots = source_roots(request.src_paths)
    try:
        entries = select_entries(request, roots, reporter, cancel, _hasher(cancel))
    except OSError as error:
        raise local_failure(error, f"package {', '.join(map(str, roots))}") from error
    check_size(entries, request.size_limit(), reporter)
    listing = bakery_pb2.PackageRequest(
        files=[
            bakery_pb2.PackageFile(
                path=_wire_path(entry.relative),
                executable=entry.executable,
                size=entry.size,
                blake3=entry.digest,
            )
            for entry in entries
        ]
    )
    try:
        channel = shared_channel(url, _IDEMPOTENT)
    except ValueError as error:
        raise CodePackagingException(f"{error}; set service= or BAKERY_URL to one") from None
    stub = bakery_pb2_grpc.BakeryStub(channel)  # type: ignore[no-untyped-call]  # generated
    for _ in range(_ROUNDS):
        reply = _call(stub.PackageCode, listing, url, cancel)
        if reply.WhichOneof("answer") == "packaged":
            reporter.info(f"Packaged {len(entries)} files as {reply.packaged.key} on {url}")
            return PackagedCode(reply.packaged.url, reply.packaged.key)
        _upload(stub, list(reply.missing.blake3), entries, url, reporter, cancel)
    raise CodePackagingException(
        f"the Bakery service at {url} still lacked contents after {_ROUNDS} uploads; run it again",
        kind=ErrorKind.CONFLICT,
    )


def _hasher(cancel: CancelToken) -> Callable[[list[SourceFile], Callable[[int], None]], list[str]]:
    """Hash the files the stat cache does not know, one per worker thread (nothing is
    compressed here: the server builds the tarball)."""

    def digest(source: SourceFile) -> str:
        cancel.check()
        return file_digest(source.path)

    def hash_missing(sources: list[SourceFile], on_hashed: Callable[[int], None]) -> list[str]:
        digests = []
        with worker_pool("hash") as pool:
            for source, value in zip(sources, pool.map(digest, sources), strict=True):
                on_hashed(source.size)
                digests.append(value)
        return digests

    return hash_missing


def _wire_path(relative: str) -> str:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise CodePackagingException(
            f"{relative!r} is not a UTF-8 file name, which a remote package cannot carry; "
            "rename it, exclude it, or package locally"
        ) from None
    return relative


def _call(method: Any, argument: Any, url: str, cancel: CancelToken) -> Any:
    """One call with a deadline (the caller's, at most CALL_SECONDS) that the token cancels
    from any thread (the server then stops its work: nothing is stored); a failed call is a
    CodePackagingException with the server's message and the status's kind."""
    import grpc

    from stagekit.api.calls import kind_of, token_metadata

    cancel.check()
    timeout = cancel.remaining(CALL_SECONDS)
    call = method.future(argument, timeout=timeout, metadata=token_metadata())
    forget = cancel.on_cancel(call.cancel)
    try:
        return call.result()
    except grpc.FutureCancelledError:  # only the token cancels the call
        cancel.check()
        raise
    except grpc.RpcError as error:
        cancel.check()  # the caller's cancel or deadline, not the server's failure
        code = error.code()  # a failed call is also a grpc.Call
        raise CodePackagingException(
            f"{error.details()} (Bakery service at {url}: {code.name})",
            kind=kind_of(code),
        ) from error
    finally:
        forget()


def _upload(
    stub: "bakery_pb2_grpc.BakeryStub",
    missing: list[str],
    entries: list[Entry],
    url: str,
    reporter: Reporter,
    cancel: CancelToken,
) -> None:
    """Send the contents the server lacks, read from the files they were hashed from."""
    by_digest = {entry.digest: entry for entry in entries}
    unknown = [digest for digest in missing if digest not in by_digest]
    if unknown:
        raise CodePackagingException(
            f"the Bakery service at {url} asked for contents not in the list ({unknown[0]})",
            kind=ErrorKind.INTERNAL,
        )
    sending = [by_digest[digest] for digest in missing]
    total = sum(entry.size for entry in sending)
    reporter.info(f"Uploading {len(sending)} files ({total / 1e6:.1f} MB) to {url}")
    problems: list[CodePackagingException] = []
    chunks = _chunks(sending, reporter.meter("upload", total), problems, cancel)
    try:
        _call(stub.UploadContents, chunks, url, cancel)
    except CodePackagingException:
        if problems:  # the stream stopped early because of this side
            raise problems[0] from None
        raise
    cancel.check()
    if problems:
        raise problems[0]


def _chunks(
    sending: Sequence[Entry],
    on_sent: Callable[[int], None],
    problems: list[CodePackagingException],
    cancel: CancelToken,
) -> Iterator["bakery_pb2.ContentChunk"]:
    """Each file's bytes in order, its last chunk marked. grpc reads this in its own thread:
    a file that no longer matches its digest ends the stream before that file's last chunk
    (so the server stores nothing for it) and is left in `problems`; so does cancellation,
    which the caller reports itself."""
    try:
        for entry in sending:
            with open(entry.path, "rb") as source:
                yield from _file_chunks(entry, source, on_sent, cancel)
    except Cancelled:
        return
    except CodePackagingException as problem:
        problems.append(problem)
    except OSError as error:
        problems.append(local_failure(error, f"read {entry.path}"))


def _file_chunks(
    entry: Entry, source: BinaryIO, on_sent: Callable[[int], None], cancel: CancelToken
) -> Iterator["bakery_pb2.ContentChunk"]:
    import blake3

    from stagekit.api.bakery.v1 import bakery_pb2

    hasher = blake3.blake3()
    left = entry.size
    while True:
        cancel.check()
        data = source.read(min(CHUNK_BYTES, left))
        left -= len(data)
        hasher.update(data)
        last = left == 0
        if not last and not data:
            raise changed(entry.path)  # shorter than when it was hashed
        if last and (source.read(1) or hasher.hexdigest() != entry.digest):
            raise changed(entry.path)
        yield bakery_pb2.ContentChunk(blake3=entry.digest, data=data, last=last)
        on_sent(len(data))
        if last:
            return
