"""The Docker Engine's BuildKit as plain sockets: grpcio cannot take over an upgraded socket.

dockerd answers `POST /grpc` (its BuildKit Control API) and `POST /session` (a session that
dockerd calls back into) with `101 Switching Protocols` to h2c on its unix socket; after
that the connection is HTTP/2 with prior knowledge. So a `GrpcSplice` listens on a private
unix socket, and pipes each connection grpcio makes to a fresh engine connection that did
the upgrade; `attach_session` pipes one upgraded `/session` connection (dockerd the gRPC
client) to the local gRPC server that serves the session.
"""

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

CHUNK = 256 * 1024
_HEADER_LIMIT = 64 * 1024


class UpgradeRefused(OSError):
    """The engine answered the upgrade request with something other than 101."""


def upgraded(
    engine_socket: str, path: str, headers: Sequence[tuple[str, str]] = ()
) -> socket.socket:
    """A connection to the engine at `engine_socket` that did `POST path` with an h2c upgrade:
    from here on it carries HTTP/2. Raises OSError (UpgradeRefused for a refusal)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(engine_socket)
        lines = [
            f"POST {path} HTTP/1.1",
            "Host: docker",
            "Connection: Upgrade",
            "Upgrade: h2c",
            "Content-Length: 0",
            *(f"{name}: {value}" for name, value in headers),
        ]
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk or len(answer) > _HEADER_LIMIT:
                raise UpgradeRefused(f"the engine closed the connection during POST {path}")
            answer += chunk
        head, _, rest = answer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in f"{status} ":
            raise UpgradeRefused(f"POST {path} was answered {status!r}, not 101: {rest[:300]!r}")
        if rest:  # bytes of the HTTP/2 stream that came with the answer: keep them in order
            return _Prefixed(connection, rest)  # type: ignore[return-value]
        return connection
    except BaseException:
        connection.close()
        raise


class _Prefixed:
    """A socket whose first `recv` returns bytes already read past the upgrade answer."""

    def __init__(self, inner: socket.socket, prefix: bytes) -> None:
        self._inner = inner
        self._prefix = prefix

    def recv(self, size: int) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._inner.recv(size)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def pipe(first: socket.socket, second: socket.socket) -> threading.Thread:
    """Copy bytes both ways until both directions ended; both sockets closed at the end.
    Returns the thread that copies `first` -> `second` (joined after the other direction)."""

    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def both() -> None:
        back = threading.Thread(target=copy, args=(second, first), daemon=True)
        back.start()
        copy(first, second)
        back.join()
        for sock in (first, second):
            with contextlib.suppress(OSError):
                sock.close()

    thread = threading.Thread(target=both, name="buildkit-splice", daemon=True)
    thread.start()
    return thread


class GrpcSplice:
    """A private unix socket (`target`, a grpc target) whose every connection is piped to
    the engine's `/grpc` after the upgrade. Close it to stop listening."""

    def __init__(self, engine_socket: str) -> None:
        self.engine_socket = engine_socket
        self._directory = tempfile.TemporaryDirectory(prefix="bakery-buildkit-")
        os.chmod(self._directory.name, 0o700)
        self.path = str(Path(self._directory.name) / "grpc.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._closed = False
        threading.Thread(target=self._accept, name="buildkit-splice-accept", daemon=True).start()

    @property
    def target(self) -> str:
        return f"unix:{self.path}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                local, _ = self._listener.accept()
            except OSError:
                return
            try:
                remote = upgraded(self.engine_socket, "/grpc")
            except OSError:
                local.close()  # grpcio sees the connection fail: the call reports UNAVAILABLE
                continue
            pipe(local, remote)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._directory.cleanup()


def attach_session(
    engine_socket: str, headers: Sequence[tuple[str, str]], server_path: str
) -> socket.socket:
    """Open the engine's `/session` with `headers` and pipe it to the gRPC server listening on
    the unix socket `server_path`; returns the engine connection (close it to end the session)."""
    remote = upgraded(engine_socket, "/session", headers)
    local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        local.connect(server_path)
    except OSError:
        remote.close()
        local.close()
        raise
    pipe(remote, local)
    return remote
