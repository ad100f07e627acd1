"""What both sides of a Bakery call agree on besides the messages: the service URL, the
token, retries of idempotent calls, and how an `ErrorKind` travels as a status code.

Imports grpc: import this module where a call is made, never at a stage's top.
"""

import json
import os
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

import grpc

from stagekit.errors import ErrorKind

_STATUS_OF_KIND = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.CONFLICT: grpc.StatusCode.ABORTED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorKind.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_KIND_OF_STATUS = {status: kind for kind, status in _STATUS_OF_KIND.items()} | {
    # A bad or missing token, or a request too large: fixing the call is what helps.
    grpc.StatusCode.UNAUTHENTICATED: ErrorKind.INVALID_INPUT,
    grpc.StatusCode.PERMISSION_DENIED: ErrorKind.INVALID_INPUT,
    grpc.StatusCode.OUT_OF_RANGE: ErrorKind.INVALID_INPUT,
    grpc.StatusCode.FAILED_PRECONDITION: ErrorKind.INVALID_INPUT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.ALREADY_EXISTS: ErrorKind.CONFLICT,
}

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest message either side accepts: a file list of ~300k paths (gRPC's default is 4 MiB)."""

_RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "2s",
    "backoffMultiplier": 3,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def status_of(kind: ErrorKind) -> grpc.StatusCode:
    """The status code a server answers a stage's failure of `kind` with."""
    return _STATUS_OF_KIND[kind]


def kind_of(status: grpc.StatusCode) -> ErrorKind:
    """The `ErrorKind` a client raises for a call that ended with `status`."""
    return _KIND_OF_STATUS.get(status, ErrorKind.INTERNAL)


def token_metadata() -> tuple[tuple[str, str], ...]:
    """`authorization: Bearer <BAKERY_TOKEN>` when the variable is set."""
    token = os.environ.get("BAKERY_TOKEN")
    return (("authorization", f"Bearer {token}"),) if token else ()


_shared: dict[tuple[str, tuple[tuple[str, str], ...], str | None], grpc.Channel] = {}
_shared_lock = threading.Lock()
os.register_at_fork(after_in_child=_shared.clear)  # a channel must not cross a fork


def shared_channel(url: str, idempotent: Sequence[tuple[str, str]]) -> grpc.Channel:
    """`open_channel`'s channel, opened once per process and kept: a call on it costs no new
    connection, handshake or polling thread (what every remote cache hit would pay). grpc
    reconnects it by itself after a server restart; never close it."""
    key = (url, tuple(idempotent), os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"))
    with _shared_lock:
        channel = _shared.get(key)
        if channel is None:
            channel = _shared[key] = open_channel(url, idempotent)
        return channel


def open_channel(url: str, idempotent: Sequence[tuple[str, str]]) -> grpc.Channel:
    """A channel to `grpc://host:port` (plain) or `grpcs://host:port` (TLS, system roots or
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH). The `(service, method)` pairs in `idempotent` are
    retried with backoff while the server is UNAVAILABLE. A bad URL is a ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("grpc", "grpcs") or not parts.hostname or parts.path.strip("/"):
        raise ValueError(f"service URL {url!r} is not grpc://host:port or grpcs://host:port")
    try:
        port = parts.port or (443 if parts.scheme == "grpcs" else None)
    except ValueError:
        port = None
    if port is None:
        raise ValueError(f"service URL {url!r} names no valid port: use grpc://host:port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    config = {
        "methodConfig": [
            {"name": [{"service": s, "method": m} for s, m in idempotent], "retryPolicy": _RETRY}
        ]
    }
    options = [
        ("grpc.service_config", json.dumps(config)),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if parts.scheme == "grpcs":
        return grpc.secure_channel(f"{host}:{port}", grpc.ssl_channel_credentials(), options)
    return grpc.insecure_channel(f"{host}:{port}", options)
