"""Registry requests that fail transiently are retried: through a real fault between the
bakery and the real docker-registry, and under 16 concurrent bakes."""

import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock
from bakery.oci.registry import ATTEMPTS
from tests.fixtures.registry import TestRegistry

CONCURRENT_BAKES = 16
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Fault:
    """Answer the first `times` requests of `method` whose path contains `path` with
    `status` (and Retry-After `retry_after`), or reset the connection if `status` is None."""

    method: str
    path: str
    status: int | None
    times: int = 1
    retry_after: int | None = None
    done: int = 0


@dataclass
class Exchange:
    """One request the relay saw: what it did with it (a status or "reset"), and when."""

    method: str
    path: str
    outcome: int | str
    at: float
    injected: bool


@dataclass
class FaultRelay:
    """A loopback HTTP relay in front of the real registry: requests that match a `Fault`
    get that fault, all others are forwarded (with their Host, so the registry's Location
    headers point back at the relay) and answered with the registry's response."""

    upstream: str
    faults: list[Fault]
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=120)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                relay._handle(self)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def injected(self) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.injected]

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path in path and fault.done < fault.times:
                    fault.done += 1
                    return fault
        return None

    def _record(self, handler: BaseHTTPRequestHandler, outcome: int | str, injected: bool):
        exchange = Exchange(handler.command, handler.path, outcome, time.monotonic(), injected)
        with self._lock:
            self.exchanges.append(exchange)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        assert "chunked" not in handler.headers.get("Transfer-Encoding", "")
        fault = self._fault_for(handler.command, handler.path)
        if fault is not None and fault.status is None:
            self._record(handler, "reset", injected=True)
            # SO_LINGER 0: closing sends RST, the client sees a reset connection.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
            handler.wfile = _Discard()
            handler.close_connection = True
            return
        body = handler.rfile.read(length) if length else b""
        if fault is not None:
            self._record(handler, fault.status, injected=True)
            handler.send_response(fault.status)
            if fault.retry_after is not None:
                handler.send_header("Retry-After", str(fault.retry_after))
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = self.host
        answer = self._client.request(
            handler.command, f"http://{self.upstream}{handler.path}", headers=headers, content=body
        )
        self._record(handler, answer.status_code, injected=False)
        handler.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                handler.send_header(key, value)
        length_header = answer.headers.get("Content-Length", str(len(answer.content)))
        handler.send_header("Content-Length", length_header)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer.content)


class _Discard:
    """Where a reset connection's handler writes: nowhere."""

    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def fault_relay(registry: TestRegistry, *faults: Fault) -> Iterator[FaultRelay]:
    relay = FaultRelay(registry.host, list(faults))
    try:
        yield relay
    finally:
        relay.close()


def success(exchange: Exchange) -> bool:
    return not exchange.injected and isinstance(exchange.outcome, int) and exchange.outcome < 500


def same_request(exchange: Exchange) -> tuple[str, str]:
    """What a retry repeats: the method and path; for an upload's final PUT (whose session
    path is new on every try) the blob digest it completes."""
    path, _, query = exchange.path.partition("?")
    if exchange.method == "PUT" and "/blobs/uploads/" in path:
        return "PUT upload", next(p for p in query.split("&") if p.startswith("digest="))
    return exchange.method, exchange.path


def test_transient_faults_are_retried_and_the_bake_succeeds(
    bake_env, registry, pushed_debian_base, monkeypatch
):
    faults = [
        Fault("GET", "/manifests/", None),  # the spec's tag lookup: connection reset
        Fault("GET", "/blobs/", None),  # the base's config: connection reset
        Fault("GET", "/manifests/", 503),  # the next manifest GET (its retry or the base's)
        Fault("HEAD", "/blobs/", 500, times=2),  # is this layer there yet?
        Fault("POST", "mount=", 429, retry_after=2),  # mounting the base layer
        Fault("PUT", "/blobs/uploads/", 500),  # completing an upload
        Fault("PUT", "/manifests/sha256:", None),  # the manifest: connection reset
    ]
    repo = registry.fresh_repo("relay")
    with fault_relay(registry, *faults) as relay:
        monkeypatch.setenv(
            "BAKERY_BASE_IMAGE", pushed_debian_base.replace(registry.host, relay.host)
        )
        baked = bake_image(pypi={"six": ""}, registry=f"{relay.host}/{repo}")

    assert [fault.done for fault in faults] == [fault.times for fault in faults]
    for fault in relay.injected():
        retries = [
            e
            for e in relay.exchanges
            if e.at > fault.at and not e.injected and same_request(e) == same_request(fault)
        ]
        assert retries and success(retries[0]), (fault, retries[:1])
        if fault.outcome == 429:
            assert retries[0].at - fault.at >= 2  # it waited as long as Retry-After said
    assert [tag for tag in registry.tags(repo) if tag.startswith("spec-")]
    direct = baked.image.replace(relay.host, registry.host)
    assert [package.name for package in read_lock(direct).packages] == ["six"]


def test_a_registry_that_keeps_failing_is_named_after_bounded_attempts(bake_env, registry):
    always = Fault("GET", "/v2/", 503, times=1000)
    with fault_relay(registry, always) as relay, pytest.raises(ImageBakingException) as raised:
        bake_image(pypi={"six": ""}, registry=f"{relay.host}/{registry.fresh_repo('down')}")

    message = raised.value.message
    assert f"on registry {relay.host}: HTTP 503" in message
    assert f"gave up after {ATTEMPTS} attempts" in message
    assert len(relay.exchanges) == ATTEMPTS  # the tag lookup, tried ATTEMPTS times; no more


def test_sixteen_concurrent_bakes_all_succeed(bake_env, registry):
    repo = registry.fresh_repo("concurrent")
    target = f"{registry.host}/{repo}"

    def bake(index: int) -> str:
        # Distinct specs (cache_name) with the same packages: every bake pushes the same
        # layers into one repository at the same time, which makes docker-registry answer
        # some blob checks with 500 and some manifests with "blob unknown".
        return bake_image(
            pypi={"six": "", "idna": ""}, registry=target, cache_name=f"bake-{index}"
        ).image

    with ThreadPoolExecutor(CONCURRENT_BAKES) as pool:
        images = list(pool.map(bake, range(CONCURRENT_BAKES)))

    assert len(set(images)) == CONCURRENT_BAKES
    spec_tags = [tag for tag in registry.tags(repo) if tag.startswith("spec-")]
    assert len(spec_tags) == CONCURRENT_BAKES
    assert {p.name for p in read_lock(images[0]).packages} == {"six", "idna"}
