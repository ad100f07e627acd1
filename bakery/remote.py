"""A bake on a Bakery server: `bake_image(service=...)` or BAKERY_URL.

The client reads the requirements file (and its `-r` includes) or pyproject itself and sends
their contents; the server bakes and streams its events back into the caller's reporter, so
`logger`, `progress` and `events` work as for a local bake. Failures are ImageBakingException
with the server's kind and message. Every call has a deadline; a stream that drops after the
server accepted the bake re-attaches with Watch (the bake goes on meanwhile). This module is
imported only when a bake runs remotely: it loads grpc.
"""

import os
import time
import uuid
from pathlib import Path

import grpc

from bakery import wire
from bakery.bake import BakeResult
from bakery.errors import ImageBakingException
from bakery.request import BakeRequest
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.api.calls import kind_of, open_channel, token_metadata
from stagekit.errors import ErrorKind
from stagekit.progress import LogLine, Reporter

DEFAULT_TIMEOUT = 3600.0
"""Seconds a remote bake may take, queue included, unless the caller says otherwise."""
REATTACH_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Waits before each retry of a dropped stream: five tries over ~15 s."""


def bake_remote(
    request: BakeRequest,
    url: str,
    *,
    reporter: Reporter | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> BakeResult:
    """Bake `request` on the server at `url` (grpc://host:port or grpcs://host:port)."""
    reporter = reporter or Reporter("bakery.bake")
    for name in ("registry", "target"):
        if getattr(request, name) is not None:
            raise ImageBakingException(
                f"{name}= cannot be chosen for a remote bake: the server publishes to its own "
                f"registry. Leave {name} out, or bake locally (no service= / BAKERY_URL)."
            )
    if request.is_conda:
        raise ImageBakingException(
            "A Bakery server does not take conda specs yet: bake conda images in this process "
            "(leave out service= and BAKERY_URL)."
        )
    message = request_message(request)
    deadline = time.monotonic() + timeout
    metadata = token_metadata()
    try:
        channel = open_channel(url, idempotent=())  # re-attaching is done here, with Watch
    except ValueError as exc:
        raise ImageBakingException(
            f"{exc}; set service= or BAKERY_URL to the Bakery server's address."
        ) from None
    with channel:
        stub = bakery_pb2_grpc.BakeryStub(channel)
        build_id = ""
        for delay in (*REATTACH_DELAYS, None):
            remaining = deadline - time.monotonic()
            if build_id:
                call = stub.Watch(
                    bakery_pb2.WatchRequest(build_id=build_id), timeout=remaining, metadata=metadata
                )
            else:  # Bake with the same request_id joins the first attempt if it got through
                call = stub.Bake(message, timeout=remaining, metadata=metadata)
            try:
                for event in call:
                    if event.HasField("accepted"):
                        build_id = event.accepted.build_id
                    elif (result := _follow(event, reporter)) is not None:
                        return result
            except grpc.RpcError as exc:
                code = exc.code()
                if (
                    code != grpc.StatusCode.UNAVAILABLE
                    or delay is None
                    or time.monotonic() + delay >= deadline
                ):
                    raise _failure(exc, url) from None
                reporter.warn(f"lost the connection to {url}; trying again in {delay:g}s")
                time.sleep(delay)
                continue
            raise ImageBakingException(
                f"the server at {url} ended the bake's stream without a result; bake again",
                kind=ErrorKind.UNAVAILABLE,
            )
    raise AssertionError("the last attempt returns or raises")


def _follow(event: bakery_pb2.BakeEvent, reporter: Reporter) -> BakeResult | None:
    """Pass one stream event on to the reporter; the result when it is the last."""
    if event.HasField("result"):
        return wire.result_value(event.result)
    if event.HasField("error"):
        raise ImageBakingException(event.error.message, kind=wire.error_kind(event.error.kind))
    if event.HasField("queued"):
        reporter.info(f"Queued on the server: position {event.queued.position}")
    elif event.HasField("progress"):
        p = event.progress
        reporter.advance(p.stage, p.done, p.total)
    elif event.HasField("log"):
        line = wire.event_value(event)
        assert isinstance(line, LogLine)
        (reporter.warn if line.warning else reporter.info)(line.message)
    return None


def request_message(request: BakeRequest) -> bakery_pb2.BakeRequest:
    """The wire request for `request`, its files read here (the server cannot see them)."""
    message = bakery_pb2.BakeRequest(
        pypi=dict(request.pypi or {}),
        base_image=request.base_image or "",
        python=request.python or "",
        platform=request.platform or "",
        cache_name=request.cache_name or "",
        compression=wire.COMPRESSION_NAMES[request.compression],
        force=request.force,
        request_id=uuid.uuid4().hex,
    )
    if request.requirements_file is not None:
        message.requirements.CopyFrom(read_requirements_source(Path(request.requirements_file)))
    if request.pyproject_toml is not None:
        path = Path(request.pyproject_toml)
        message.pyproject.CopyFrom(bakery_pb2.SourceFile(path=path.name, content=_text(path)))
    return message


def read_requirements_source(path: Path) -> bakery_pb2.SourceFile:
    """A requirements file with every file it includes (`-r` / `--requirement`, followed
    relative to the including file), keyed by path relative to the first file's directory."""
    from bakery.spec import _logical_lines, _option_pairs, _split_line

    root = path.parent
    texts: dict[str, str] = {}
    pending = [path]
    while pending:
        current = pending.pop()
        key = os.path.relpath(current, root).replace(os.sep, "/")
        if key in texts:
            continue
        texts[key] = text = _text(current)
        for number, line in _logical_lines(text):
            requirement, options = _split_line(line, f"{current}:{number}")
            if requirement:
                continue
            for option, value in _option_pairs(options, f"{current}:{number}"):
                if option in ("-r", "--requirement"):
                    pending.append(Path(os.path.normpath(current.parent / value)))
    content = texts.pop(path.name)
    return bakery_pb2.SourceFile(path=path.name, content=content, includes=texts)


def _text(path: Path) -> str:
    from bakery.spec import _read_text

    return _read_text(path, "requirements file" if path.suffix != ".toml" else "pyproject.toml")


def _failure(error: grpc.RpcError, url: str) -> ImageBakingException:
    code = error.code()
    details = error.details() or code.name
    kind = kind_of(code)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        details = f"the Bakery server at {url}: {details}"
    return ImageBakingException(details, kind=kind)
