"""Between the wire and the library: a `bakery.v1.BakeRequest` as the `BakeRequest` a local
`bake_image` builds, and results and errors back as messages.

A requirements file or pyproject arrives as contents (with its `-r` includes); they are
written under a scratch directory so the spec reads them exactly as it reads local files.
"""

from pathlib import Path, PurePosixPath

import grpc

from bakery.bake import BakeResult
from bakery.errors import ImageBakingException
from bakery.request import BakeRequest
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.errors import ErrorKind

_COMPRESSION = {bakery_pb2.COMPRESSION_GZIP: "gzip", bakery_pb2.COMPRESSION_ZSTD: "zstd"}
_OUTCOME = {
    "built": bakery_pb2.OUTCOME_BUILT,
    "hit": bakery_pb2.OUTCOME_HIT,
    "joined": bakery_pb2.OUTCOME_JOINED,
}
ERROR_KINDS = {kind: getattr(bakery_pb2, f"ERROR_KIND_{kind.name}") for kind in ErrorKind}
STATUS_CODES = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorKind.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}
"""The status a failure of each kind is answered with."""


def _place(root: Path, written: str, content: str) -> Path:
    """Write `content` at the relative path `written` under `root`; refuse escapes."""
    relative = PurePosixPath(written)
    if not written or relative.is_absolute() or ".." in relative.parts:
        raise ImageBakingException(
            f"file path {written!r} must be relative and stay inside its directory"
        )
    path = root.joinpath(*relative.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def _source(message: bakery_pb2.SourceFile, root: Path) -> Path:
    main = _place(root, PurePosixPath(message.path or "requirements.txt").name, message.content)
    for written, content in message.includes.items():
        _place(root, written, content)
    return main


def request_from_message(
    message: bakery_pb2.BakeRequest, platform: str | None, scratch: Path, *, force: bool = False
) -> BakeRequest:
    """The library's request for `message` on `platform` (None: the message's own), its
    files written under `scratch`; `force` adds to the message's own."""
    return BakeRequest(
        pypi=dict(message.pypi) or None,
        requirements_file=_source(message.requirements, scratch)
        if message.HasField("requirements")
        else None,
        pyproject_toml=_source(message.pyproject, scratch)
        if message.HasField("pyproject")
        else None,
        base_image=message.base_image or None,
        python=message.python or None,
        platform=platform or message.platform or None,
        cache_name=message.cache_name or None,
        compression=_COMPRESSION.get(message.compression),
        force=message.force or force,
    )


def result_message(result: BakeResult) -> bakery_pb2.BakeResult:
    return bakery_pb2.BakeResult(
        image=result.image,
        python_path=result.python_path,
        spec_id=result.spec_id,
        lock_digest=result.lock_digest,
        outcome=_OUTCOME.get(result.outcome, bakery_pb2.OUTCOME_UNSPECIFIED),
        stage_seconds=result.stage_seconds,
        bytes_uploaded=result.bytes_uploaded,
    )


def kind_of(error: Exception) -> ErrorKind:
    """A typed failure's kind; anything else is internal."""
    kind = getattr(error, "kind", None)
    return kind if isinstance(kind, ErrorKind) else ErrorKind.INTERNAL


def error_message(error: Exception) -> bakery_pb2.Error:
    return bakery_pb2.Error(kind=ERROR_KINDS[kind_of(error)], message=str(error))
