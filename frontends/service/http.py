"""The HTTP side of `bakery serve`: uvicorn serving a FastAPI app in a thread of the server's
process, beside the gRPC port.

- `/healthz`: the process answers (liveness). `/readyz`: 503 once a graceful shutdown began
  or while the index cannot be read, else 200 (readiness: route new work elsewhere).
- `/metrics`: the server's own Prometheus registry (metrics.py).
- `/`: the status page, drawn by its script from `/api/v1/status` (status.py).
- `POST /api/v1/bake`: Fast Bakery's bake call (fastbakery.py has the wire format). It submits
  to the same build machinery as the gRPC Bake (bakes.py): identical requests share one build,
  and a request sent again once the first was answered finds the image (a hit).

Only the Fast Bakery call needs a token (`x-api-key`, a Bakery token of either scope) once
tokens exist; the other paths are open, like gRPC health checks. The listening socket is
bound before the gRPC server starts (`bind`), so a busy port fails the start cleanly and
connections made before uvicorn runs wait in the backlog.
"""

import asyncio
import functools
import logging
import socket
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from bakery import wire
from bakery.errors import ImageBakingException
from frontends.service import fastbakery, status
from frontends.service.bakes import BakeRpcs, LocalCaller
from frontends.service.metrics import ServiceMetrics
from frontends.service.slots import ANONYMOUS, QueueFull
from frontends.service.state import ServiceIndex
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.errors import ErrorKind

log = logging.getLogger("bakery.service.http")

POLL_SECONDS = 0.25
"""How often a waiting Fast Bakery request checks its build and its connection."""
STOP_SECONDS = 5.0
"""How long stopping waits for answers still being sent (builds have ended by then)."""


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on `host:port` (port 0: any free one); OSError if it cannot."""
    name = host.strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    return socket.create_server((name, port), family=family, backlog=1024)


class Readiness:
    """Whether this server should get new work: not once it is draining, nor while its index
    cannot be read."""

    def __init__(self, index: ServiceIndex) -> None:
        self.index = index
        self.draining = threading.Event()

    def problem(self) -> str | None:
        if self.draining.is_set():
            return "the server is shutting down"
        try:
            self.index.has_tokens()
        except Exception as exc:  # any failure of the store makes the server unusable
            return f"the service index cannot be read: {exc}"
        return None


@functools.lru_cache(maxsize=1024)
def _lock_size(image: str) -> int:
    from bakery.inspect import read_lock

    lock = read_lock(image)
    return len(lock.packages) + len(lock.conda)  # a conda env's PyPI part is on top


def package_count(image: str) -> int | None:
    """How many packages the lock in `image` holds (images are immutable: remembered);
    None when it cannot be read."""
    try:
        return _lock_size(image)
    except Exception as exc:  # the answer goes out without bakingStats then
        log.info("cannot count the packages of %s: %s", image, exc)
        return None


def _error(status_code: int, kind: ErrorKind, message: str) -> JSONResponse:
    return JSONResponse(fastbakery.error_body(status_code, kind, message), status_code)


def _authenticate(index: ServiceIndex, key: str | None) -> JSONResponse | str:
    """The caller's name (its token's; ANONYMOUS on a server without tokens), or a 401
    without a known token once tokens exist; any scope may bake."""
    if not index.has_tokens():
        return ANONYMOUS
    if not key or not key.strip():
        return _error(
            401,
            ErrorKind.INVALID_INPUT,
            "this server needs a token: send `x-api-key: <token>` (a Bakery token; an "
            "admin creates one with `bakery tokens create --scope bake NAME`)",
        )
    token = index.token(key.strip())
    if token is None:
        return _error(401, ErrorKind.INVALID_INPUT, "the x-api-key is not a token of this server")
    return token.name


async def _body(request: Request) -> bytes:
    """The request body, refused past MAX_BODY_BYTES without reading it all."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > fastbakery.MAX_BODY_BYTES:
            raise fastbakery.BadRequest(
                f"the body is larger than {fastbakery.MAX_BODY_BYTES} bytes", status=413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    service: BakeRpcs, index: ServiceIndex, metrics: ServiceMetrics, readiness: Readiness
) -> FastAPI:
    """The HTTP side's routes over one server's builds, index and metrics."""
    app = FastAPI(title="Bakery", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = ErrorKind.NOT_FOUND if exc.status_code == 404 else ErrorKind.INVALID_INPUT
        return _error(exc.status_code, kind, f"{request.method} {request.url.path}: {exc.detail}")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, ErrorKind.INTERNAL, f"the server failed: {type(exc).__name__}: {exc}")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        problem = readiness.problem()
        if problem is not None:
            return JSONResponse({"ready": False, "reason": problem}, 503)
        return JSONResponse({"ready": True})

    @app.get("/metrics")
    def prometheus() -> Response:
        content, content_type = metrics.exposition()
        return Response(content, media_type=content_type)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return status.PAGE

    @app.get("/api/v1/status")
    def status_json() -> dict[str, Any]:
        return status.snapshot(service, index)

    @app.post("/api/v1/bake")
    async def fast_bake(request: Request) -> Response:
        if readiness.draining.is_set():
            return _error(
                503,
                ErrorKind.UNAVAILABLE,
                "the server is shutting down; send the request again (to another replica)",
            )
        caller = await run_in_threadpool(_authenticate, index, request.headers.get("x-api-key"))
        if isinstance(caller, JSONResponse):
            return caller
        try:
            message = fastbakery.bake_message(fastbakery.parse(await _body(request)))
        except fastbakery.BadRequest as exc:
            return _error(exc.status, exc.kind, exc.message)
        return await _bake(service, message, request, caller)

    return app


async def _bake(
    service: BakeRpcs, message: bakery_pb2.BakeRequest, request: Request, name: str
) -> Response:
    """Submit `message` as one more caller (`name`) of its build, wait for the build's end (or
    the client's departure), and answer in Fast Bakery's shape."""
    caller = LocalCaller(name)
    try:
        try:
            build, started = await run_in_threadpool(service.submit, message, caller)
        except ImageBakingException as exc:  # bad input: nothing was started
            invalid = exc.kind is ErrorKind.INVALID_INPUT
            return _error(
                400 if invalid else fastbakery.FAILURE_STATUS[exc.kind], exc.kind, exc.message
            )
        except QueueFull as exc:  # nothing was started; the client may send it again later
            return _error(429, ErrorKind.UNAVAILABLE, str(exc))
        while not build.done:
            if await request.is_disconnected():  # nobody to answer; the build may be orphaned
                return Response(status_code=499)
            await asyncio.sleep(POLL_SECONDS)
        last = await run_in_threadpool(lambda: service.last_event(build, joined=not started))
    finally:
        caller.leave()
    if last.HasField("error"):
        kind = wire.error_kind(last.error.kind)
        code, failure = fastbakery.failure_body(kind, last.error.message)
        return JSONResponse(failure, code)
    packages = await run_in_threadpool(package_count, last.result.image)
    return JSONResponse(fastbakery.success_body(last.result, packages))


class HttpSide:
    """The HTTP side of one server: its app served by uvicorn on `listener`, in a thread."""

    def __init__(
        self,
        listener: socket.socket,
        service: BakeRpcs,
        index: ServiceIndex,
        metrics: ServiceMetrics,
    ) -> None:
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        self.readiness = Readiness(index)
        config = uvicorn.Config(
            create_app(service, index, metrics, self.readiness),
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(STOP_SECONDS),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [listener]}, name="bakery-http", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def drain(self) -> None:
        """A graceful shutdown began: /readyz answers 503, new bakes are refused."""
        self.readiness.draining.set()

    def stop(self) -> None:
        """Close the port; answers still being sent get STOP_SECONDS."""
        self.server.should_exit = True
        self.thread.join(STOP_SECONDS + 5)
        self.listener.close()
