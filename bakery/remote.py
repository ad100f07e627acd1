"""A bake on a Bakery server: `bake_image(service=...)` or BAKERY_URL.

The client reads the requirements file (and its `-r` includes) or pyproject itself and sends
their contents; the server bakes and streams its events back into the caller's reporter, so
`logger`, `progress` and `events` work as for a local bake. Failures are ImageBakingException
with the server's kind and message. Every call has a deadline; a stream that drops after the
server accepted the bake re-attaches with Watch (the bake goes on meanwhile), and bakes again
when a restarted server no longer knows it. A `CancelToken` cancels the call from any
thread; the server then hears Cancel. This module is imported only when a bake runs
remotely: it loads grpc.
"""

import math
import os
import time
import uuid
from pathlib import Path

import grpc

from bakery import wire
from bakery.bake import BakeResult
from bakery.errors import ImageBakingException
from bakery.request import BakeRequest
from bakery.spec import _read_text
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.api.calls import kind_of, shared_channel, token_metadata
from stagekit.cancel import Cancelled, CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import LogLine, Reporter

DEFAULT_TIMEOUT = 3600.0
"""Seconds a remote bake may take, queue included, unless the caller says otherwise."""
REATTACH_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Waits before each retry of a dropped stream: five tries over ~15 s."""
CANCEL_SECONDS = 5.0
"""Deadline of the Cancel call that tells the server a cancelled caller stopped waiting."""


def bake_remote(
    request: BakeRequest,
    url: str,
    *,
    reporter: Reporter | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: CancelToken | None = None,
) -> BakeResult:
    """Bake `request` on the server at `url` (grpc://host:port or grpcs://host:port).

    `cancel` (from any thread) ends the call at once with a cancelled ImageBakingException,
    and tells the server, which cancels the build unless another caller waits for it."""
    reporter = reporter or Reporter("bakery.bake")
    for name in ("registry", "target"):
        if getattr(request, name) is not None:
            raise ImageBakingException(
                f"{name}= cannot be chosen for a remote bake: the server publishes to its own "
                f"registry. Leave {name} out, or bake locally (no service= / BAKERY_URL)."
            )
    message = request_message(request)
    try:
        channel = shared_channel(url, idempotent=())  # re-attaching is done here, with Watch
    except ValueError as exc:
        raise ImageBakingException(
            f"{exc}; set service= or BAKERY_URL to the Bakery server's address."
        ) from None
    session = _Session(
        bakery_pb2_grpc.BakeryStub(channel),
        message,
        url,
        reporter,
        cancel or CancelToken(),
        time.monotonic() + timeout,
    )
    try:
        return session.run()
    except Cancelled as stop:
        session.release()
        raise ImageBakingException(
            f"The bake on {url} stopped: {stop.message}. The server cancels it unless "
            "another caller waits for the same bake; a bake it cancels tags nothing.",
            kind=stop.kind,
        ) from None


class _Session:
    """One remote bake: the Bake call, the Watch calls that re-attach after a dropped
    stream, and the caller's cancel."""

    def __init__(
        self,
        stub: bakery_pb2_grpc.BakeryStub,
        message: bakery_pb2.BakeRequest,
        url: str,
        reporter: Reporter,
        cancel: CancelToken,
        deadline: float,
    ) -> None:
        self.stub = stub
        self.message = message
        self.url = url
        self.reporter = reporter
        self.cancel = cancel
        self.deadline = deadline
        self.metadata = token_metadata()
        self.build_id = ""
        """Set once the server accepted the bake: a lost stream re-attaches to it."""
        self.sent = False

    def run(self) -> BakeResult:
        """The result; a failure is an ImageBakingException, the caller's cancel `Cancelled`."""
        for delay in (*REATTACH_DELAYS, None):
            self.cancel.check()
            try:
                result = self._attempt()
            except grpc.RpcError as exc:
                self.cancel.check()  # the call ended because the caller cancelled it
                if self._retry(exc, delay):
                    continue
                raise self._failure(exc) from None
            if result is None:
                raise ImageBakingException(
                    f"the server at {self.url} ended the bake's stream without a result; "
                    "bake again",
                    kind=ErrorKind.UNAVAILABLE,
                )
            return result
        raise AssertionError("the last attempt returns or raises")

    def _attempt(self) -> BakeResult | None:
        """One Bake (or, once accepted, Watch) call, followed to its result."""
        remaining = self.deadline - time.monotonic()
        if self.build_id:
            watch = bakery_pb2.WatchRequest(
                build_id=self.build_id, request_id=self.message.request_id
            )
            call = self.stub.Watch(watch, timeout=remaining, metadata=self.metadata)
        else:  # Bake with the same request_id joins the first attempt if it got through
            call = self.stub.Bake(self.message, timeout=remaining, metadata=self.metadata)
        self.sent = True
        forget = self.cancel.on_cancel(call.cancel)
        try:
            for event in call:
                if event.HasField("accepted"):
                    self.build_id = event.accepted.build_id
                elif (result := _follow(event, self.reporter)) is not None:
                    return result
        finally:
            forget()
        return None

    def _retry(self, error: grpc.RpcError, delay: float | None) -> bool:
        """Whether to call again after `error`: a dropped connection while time is left, or
        a server that no longer knows the accepted build (it restarted: bake again)."""
        code = error.code()
        if code == grpc.StatusCode.NOT_FOUND and self.build_id:
            self.reporter.warn(
                f"the server at {self.url} no longer knows build {self.build_id} (it "
                "restarted?); sending the bake again"
            )
            self.build_id = ""
            return True
        if code != grpc.StatusCode.UNAVAILABLE or delay is None:
            return False
        if time.monotonic() + delay >= self.deadline:
            return False
        self.reporter.warn(f"lost the connection to {self.url}; trying again in {delay:g}s")
        self.cancel.wait(delay)
        return True

    def _failure(self, error: grpc.RpcError) -> ImageBakingException:
        code = error.code()
        details = error.details() or code.name
        if code == grpc.StatusCode.UNAVAILABLE and self.build_id:
            return ImageBakingException(
                f"Lost the Bakery server at {self.url} during the bake (build "
                f"{self.build_id}) and could not reach it again ({details}): the server went "
                "away (stopped, restarted or crashed). A bake it did not finish tagged "
                "nothing. Bake again once the server is back (an image it did finish is then "
                "a hit), or bake locally without service= / BAKERY_URL.",
                kind=ErrorKind.UNAVAILABLE,
            )
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = f"the Bakery server at {self.url}: {details}"
        return ImageBakingException(details, kind=kind_of(code))

    def release(self) -> None:
        """Tell the server this caller stopped waiting (best effort: a server that does not
        hear it cancels the build once no caller re-attaches)."""
        if not self.sent:
            return
        cancel = bakery_pb2.CancelRequest(
            build_id=self.build_id, request_id=self.message.request_id
        )
        try:
            self.stub.Cancel(cancel, timeout=CANCEL_SECONDS, metadata=self.metadata)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: the bake never got there
                self.reporter.warn(
                    f"could not tell {self.url} that the bake was cancelled ({exc.details()}); "
                    "it stops the bake once no caller re-attaches"
                )


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
        conda=dict(request.conda or {}),
        channels=list(request.channels or ()),
        cuda=request.cuda or "",
        base_image=request.base_image or "",
        python=request.python or "",
        platform=request.platform or "",
        cache_name=request.cache_name or "",
        compression=wire.COMPRESSION_NAMES[request.compression],
        force=request.force,
        request_id=uuid.uuid4().hex,
        system_packages=list(request.system_packages),
        no_build=not request.build,
    )
    max_age = request.spec_max_age  # the caller's option or BAKERY_SPEC_MAX_AGE, if given
    if max_age is not None:
        message.max_age_seconds = math.ceil(max_age)
    if request.requirements_file is not None:
        message.requirements.CopyFrom(read_requirements_source(Path(request.requirements_file)))
    for name, (field, default) in wire.SOURCE_FILES.items():
        path = getattr(request, name)
        if path is not None and name != "requirements_file":
            content = _read_text(Path(path), default)
            getattr(message, field).CopyFrom(
                bakery_pb2.SourceFile(path=Path(path).name, content=content)
            )
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
        texts[key] = text = _read_text(current, "requirements file")
        for number, line in _logical_lines(text):
            requirement, options = _split_line(line, f"{current}:{number}")
            if requirement:
                continue
            for option, value in _option_pairs(options, f"{current}:{number}"):
                if option in ("-r", "--requirement"):
                    pending.append(Path(os.path.normpath(current.parent / value)))
    content = texts.pop(path.name)
    return bakery_pb2.SourceFile(path=path.name, content=content, includes=texts)
