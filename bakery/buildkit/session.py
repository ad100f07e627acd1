"""The session BuildKit calls back into: local files in, exporter output out, credentials.

A `Session` is a gRPC server on a private unix socket serving FileSync (the directories a
build's `local://NAME` sources read, sent with fsutil's DiffCopy protocol), FileSend (a tar
exporter's stream, written to a file), Auth (registry credentials from the Docker config)
and health (BuildKit checks the session is alive). `attach_*` connects it: to the engine's
`/session` for the Docker Engine's BuildKit, or tunnelled through Control.Session for a
standalone buildkitd. Imports grpc: loaded only when a build runs.
"""

import contextlib
import os
import queue
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bakery.buildkit.splice import attach_session, pipe
from stagekit.api.buildkit import (
    control_pb2,
    control_pb2_grpc,
    fsutil_pb2,
    session_pb2,
    session_pb2_grpc,
)

_DIRECTORY_MODE = 1 << 31
"""Go's os.ModeDir, as fsutil's Stat.mode carries it."""
_DATA_CHUNK = 32 * 1024
_PACKET = fsutil_pb2.Packet
METHODS = (
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.FileSend/DiffCopy",
    "/moby.filesync.v1.Auth/Credentials",
    "/grpc.health.v1.Health/Check",
)
"""What the session tells BuildKit it serves (BuildKit calls nothing else)."""


def walk_stats(root: Path, directory: Path | None = None) -> Iterator[fsutil_pb2.Stat]:
    """Every directory and regular file under `root` in fsutil's order (each directory's
    entries sorted by name, a directory's contents right after it), paths relative to `root`.
    Other kinds of file are not sent: a build context here holds only files Bakery wrote."""
    for entry in sorted(os.scandir(directory or root), key=lambda e: e.name):
        stat = entry.stat(follow_symlinks=False)
        relative = Path(entry.path).relative_to(root).as_posix()
        if entry.is_dir(follow_symlinks=False):
            mode = _DIRECTORY_MODE | (stat.st_mode & 0o7777)
            yield fsutil_pb2.Stat(path=relative, mode=mode, modTime=stat.st_mtime_ns)
            yield from walk_stats(root, Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            yield fsutil_pb2.Stat(
                path=relative,
                mode=stat.st_mode & 0o7777,
                size=stat.st_size,
                modTime=stat.st_mtime_ns,
            )


class FileSync(session_pb2_grpc.FileSyncServicer):
    """Sends the directory the call's `dir-name` names: every stat, then each file BuildKit
    asks for (by its index in the stat list) as data packets, until BuildKit says FIN."""

    def __init__(self, directories: dict[str, Path]) -> None:
        self.directories = directories

    def DiffCopy(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        metadata = dict(context.invocation_metadata())
        name = str(metadata.get("dir-name", ""))
        root = self.directories.get(name)
        if root is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no access allowed to dir {name!r}")
        assert root is not None
        files: dict[int, Path] = {}
        for index, stat in enumerate(walk_stats(root)):
            if not stat.mode & _DIRECTORY_MODE:
                files[index] = root / stat.path
            yield _PACKET(type=_PACKET.PACKET_STAT, stat=stat)
        yield _PACKET(type=_PACKET.PACKET_STAT)  # the end of the list

        wanted: queue.Queue[Any] = queue.Queue()

        def read() -> None:
            try:
                for packet in request_iterator:
                    wanted.put(packet)
            except grpc.RpcError:
                pass
            wanted.put(None)

        threading.Thread(target=read, name="buildkit-filesync", daemon=True).start()
        while (packet := wanted.get()) is not None:
            if packet.type == _PACKET.PACKET_REQ:
                path = files.pop(packet.ID, None)
                if path is None:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid file id {packet.ID}")
                assert path is not None
                with path.open("rb") as source:
                    while data := source.read(_DATA_CHUNK):
                        yield _PACKET(type=_PACKET.PACKET_DATA, ID=packet.ID, data=data)
                yield _PACKET(type=_PACKET.PACKET_DATA, ID=packet.ID)
            elif packet.type == _PACKET.PACKET_FIN:
                yield _PACKET(type=_PACKET.PACKET_FIN)
                return
            elif packet.type == _PACKET.PACKET_ERR:
                context.abort(
                    grpc.StatusCode.ABORTED, f"BuildKit: {packet.data.decode(errors='replace')}"
                )


class FileSend(session_pb2_grpc.FileSendServicer):
    """Writes a tar exporter's byte stream to `target` (the build's result as one tar)."""

    def __init__(self) -> None:
        self.target: Path | None = None
        self.received = threading.Event()

    def DiffCopy(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        if self.target is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this session expects no output")
        assert self.target is not None
        partial = self.target.with_name(self.target.name + ".part")
        with partial.open("wb") as sink:
            for message in request_iterator:
                sink.write(message.data)
        partial.replace(self.target)
        self.received.set()
        yield from ()


class Auth(session_pb2_grpc.AuthServicer):
    """Registry credentials as `docker login` saved them; none is anonymous access."""

    def Credentials(self, request: Any, context: grpc.ServicerContext) -> Any:
        from bakery.oci.auth import load_credentials
        from bakery.oci.errors import RegistryError

        try:
            found = load_credentials(request.Host)
        except RegistryError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        if found is None:
            return session_pb2.CredentialsResponse()
        username, secret = found
        return session_pb2.CredentialsResponse(Username=username, Secret=secret)


class Session:
    """One build's session: `directories` by the name `local://NAME` sources use; `output`
    is where a tar exporter's result is written. Close it when the build is over."""

    def __init__(self, directories: dict[str, Path], output: Path | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.shared_key = self.id
        self.name = "bakery"
        self.file_send = FileSend()
        self.file_send.target = output
        self._directory = tempfile.TemporaryDirectory(prefix="bakery-session-")
        os.chmod(self._directory.name, 0o700)
        self.path = str(Path(self._directory.name) / "session.sock")
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="buildkit-session")
        )
        session_pb2_grpc.add_FileSyncServicer_to_server(FileSync(directories), self._server)
        session_pb2_grpc.add_FileSendServicer_to_server(self.file_send, self._server)
        session_pb2_grpc.add_AuthServicer_to_server(Auth(), self._server)
        checks = health.HealthServicer()
        checks.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checks, self._server)
        self._server.add_insecure_port(f"unix:{self.path}")
        self._server.start()
        self._closers: list[Any] = []

    def headers(self) -> list[tuple[str, str]]:
        """What BuildKit learns the session by: its id, name, shared key and methods."""
        return [
            ("X-Docker-Expose-Session-Uuid", self.id),
            ("X-Docker-Expose-Session-Name", self.name),
            ("X-Docker-Expose-Session-Sharedkey", self.shared_key),
            *(("X-Docker-Expose-Session-Grpc-Method", method) for method in METHODS),
        ]

    def attach_engine(self, engine_socket: str) -> None:
        """Serve the session to the Docker Engine through its `/session` endpoint."""
        connection = attach_session(engine_socket, self.headers(), self.path)
        self._closers.append(connection.close)

    def attach_buildkitd(self, channel: grpc.Channel) -> None:
        """Serve the session to a standalone buildkitd, tunnelled through Control.Session:
        the HTTP/2 bytes of the session travel as BytesMessages, the headers as metadata."""
        local, ours = socket.socketpair()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect(self.path)
        pipe(ours, server)
        outgoing: queue.Queue[bytes | None] = queue.Queue()

        def requests() -> Iterator[Any]:
            while (data := outgoing.get()) is not None:
                yield control_pb2.BytesMessage(data=data)

        def read_local() -> None:
            with contextlib.suppress(OSError):
                while data := local.recv(256 * 1024):
                    outgoing.put(data)
            outgoing.put(None)

        stub = control_pb2_grpc.ControlStub(channel)
        metadata = [(name.lower(), value) for name, value in self.headers()]
        call = stub.Session(requests(), metadata=metadata)

        def write_local() -> None:
            with contextlib.suppress(grpc.RpcError, OSError):
                for message in call:
                    local.sendall(message.data)
            with contextlib.suppress(OSError):
                local.shutdown(socket.SHUT_WR)

        threading.Thread(target=read_local, name="buildkit-tunnel-out", daemon=True).start()
        threading.Thread(target=write_local, name="buildkit-tunnel-in", daemon=True).start()
        self._closers += [call.cancel, local.close]

    def close(self) -> None:
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()
        self._server.stop(grace=None)
        self._directory.cleanup()
