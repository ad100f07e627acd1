"""A BuildKit client over its gRPC Control API: the same code for the Docker Engine's
embedded BuildKit (through `splice`) and a standalone buildkitd (plain gRPC).

Every failure to reach BuildKit is an ImageBakingException (kind unavailable) naming the
address and what to start; a build that fails is reported by `bakery.buildkit.status`.
"""

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bakery.buildkit.address import BuildKitAddress, buildkit_address
from bakery.buildkit.session import Session
from bakery.buildkit.splice import GrpcSplice
from bakery.errors import ImageBakingException
from stagekit.api.buildkit import control_pb2, control_pb2_grpc, llb_pb2
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind

CALL_TIMEOUT = 30.0
"""Longest a short call (ListWorkers, DiskUsage) may take."""
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_solves_done = 0
_solves_lock = threading.Lock()


def solves() -> int:
    """How many Solve calls this process made: a re-bake that builds nothing adds none."""
    with _solves_lock:
        return _solves_done


@dataclass(frozen=True)
class Worker:
    id: str
    platforms: tuple[str, ...]
    labels: Mapping[str, str]


@dataclass(frozen=True)
class CacheRecord:
    id: str
    size: int
    in_use: bool
    description: str


class BuildKit:
    """A connection to BuildKit at `address` (default: `BAKERY_BUILDKIT`). Close it."""

    def __init__(self, address: BuildKitAddress | None = None) -> None:
        self.address = address or buildkit_address()
        self._splice: GrpcSplice | None = None
        if self.address.kind == "docker":
            self._splice = GrpcSplice(self.address.target)
            target = self._splice.target
        else:
            target = self.address.target
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.control = control_pb2_grpc.ControlStub(self.channel)

    def __enter__(self) -> "BuildKit":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()
        if self._splice is not None:
            self._splice.close()

    def unreachable(self, error: BaseException) -> ImageBakingException:
        """The typed error for BuildKit not answering: where it was looked for, what to do."""
        detail = error.details() if isinstance(error, grpc.RpcError) else str(error)
        return ImageBakingException(
            f"BuildKit does not answer at {self.address.describe()} ({detail}); "
            f"{self.address.what_to_start()}. It builds sdists and system packages.",
            kind=ErrorKind.UNAVAILABLE,
        )

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise self.unreachable(error) from None
            raise ImageBakingException(
                f"BuildKit at {self.address.describe()} refused the call: {error.details()}",
                kind=ErrorKind.INTERNAL,
            ) from None

    def list_workers(self) -> list[Worker]:
        response = self._call(self.control.ListWorkers, control_pb2.ListWorkersRequest())
        return [
            Worker(
                id=record.ID,
                platforms=tuple(
                    "/".join(filter(None, (p.OS, p.Architecture, p.Variant)))
                    for p in record.platforms
                ),
                labels=dict(record.Labels),
            )
            for record in response.record
        ]

    def disk_usage(self) -> list[CacheRecord]:
        response = self._call(self.control.DiskUsage, control_pb2.DiskUsageRequest())
        return [CacheRecord(r.ID, r.Size, r.InUse, r.Description) for r in response.record]

    def prune(self, *, keep_seconds: int = 0, everything: bool = False) -> int:
        """Remove BuildKit's unused cache records (older than `keep_seconds`); bytes freed."""
        request = control_pb2.PruneRequest(
            all=everything, keepDuration=keep_seconds * 1_000_000_000
        )
        try:
            return sum(r.Size for r in self.control.Prune(request, timeout=600))
        except grpc.RpcError as error:
            raise self.unreachable(error) from None

    def session(self, directories: dict[str, Path], output: Path | None = None) -> Session:
        """A session serving `directories` (and receiving a tar export into `output`),
        attached to this BuildKit; close it after the solve."""
        session = Session(directories, output)
        try:
            if self.address.kind == "docker":
                session.attach_engine(self.address.target)
            else:
                session.attach_buildkitd(self.channel)
        except OSError as error:
            session.close()
            raise self.unreachable(error) from None
        return session

    def solve(
        self,
        definition: llb_pb2.Definition,
        *,
        session: Session | None,
        exporter: str = "",
        exporter_attrs: Mapping[str, str] | None = None,
        on_status: Callable[[Any], None],
        cancel: CancelToken,
    ) -> Mapping[str, str]:
        """Solve `definition`, exporting with `exporter`; every Status message goes to
        `on_status` (in this thread's order) while it runs. Raises grpc.RpcError for a
        failed build (the caller maps it with the statuses it saw) and ImageBakingException
        when BuildKit cannot be reached."""
        global _solves_done
        ref = f"bakery-{uuid.uuid4().hex}"
        request = control_pb2.SolveRequest(
            Ref=ref,
            Definition=definition,
            Exporter=exporter,
            ExporterAttrs=dict(exporter_attrs or {}),
            Session=session.id if session else "",
        )
        with _solves_lock:
            _solves_done += 1
        timeout = cancel.remaining(24 * 3600.0)
        future = self.control.Solve.future(request, timeout=timeout)
        forget = cancel.on_cancel(future.cancel)
        statuses = self.control.Status(control_pb2.StatusRequest(Ref=ref), timeout=timeout)
        forget_status = cancel.on_cancel(statuses.cancel)
        try:
            try:
                for message in statuses:
                    on_status(message)
            except grpc.RpcError:
                pass  # the build's own outcome is the Solve's answer
            try:
                response = future.result()
            except grpc.FutureCancelledError:
                cancel.check()
                raise
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    raise self.unreachable(error) from None
                if error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    cancel.check()  # the caller's cancel or deadline: Cancelled, not a build error
                raise
            return dict(response.ExporterResponse)
        finally:
            forget()
            forget_status()
