"""The server: Bakery's gRPC services, health checking and reflection on one port, and with
`http_port` the HTTP side (http.py: health, readiness, metrics, status page, Fast Bakery) on
another, in the same process.

Each RPC group lives in its own module; `BakeryService` joins the bake RPCs and the package
RPCs into the one `bakery.v1.Bakery` service the proto declares. Both sides share one
`ServiceMetrics` and one set of builds.
"""

from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from frontends.service.admin import AdminService
from frontends.service.auth import TokenCheck, check_bind
from frontends.service.bakes import BakeRpcs
from frontends.service.metrics import ServiceMetrics
from frontends.service.packages import PackageRpcs
from frontends.service.slots import DEFAULT_MAX_QUEUE
from frontends.service.state import INDEX_FILE, ServiceIndex, SqliteIndex
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.api.calls import MAX_MESSAGE_BYTES
from stagekit.dirs import data_dir

if TYPE_CHECKING:
    from frontends.service.http import HttpSide

SERVICE_NAMES = (
    bakery_pb2.DESCRIPTOR.services_by_name["Bakery"].full_name,
    bakery_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)


@dataclass
class ServerSettings:
    """How a server runs; every field has the default `bakery serve` uses."""

    host: str = "127.0.0.1"
    port: int = 50051
    max_builds: int = 2
    max_queue: int = DEFAULT_MAX_QUEUE
    """Bakes that may wait for a build slot; a new one beyond that is RESOURCE_EXHAUSTED."""
    workers: int = 64
    """Threads answering RPCs: each streaming Bake holds one while its client listens."""
    state_dir: Path = field(default_factory=lambda: data_dir() / "service")
    index: ServiceIndex | None = None
    """Bakes, tokens and history; None: the SQLite index in `state_dir`."""
    http_port: int | None = None
    """The HTTP side's port on `host` (0: any free one); None: no HTTP side."""


class BakeryService(BakeRpcs, PackageRpcs, bakery_pb2_grpc.BakeryServicer):
    """`bakery.v1.Bakery`: bakes (Bake, Watch) and code packages (PackageCode,
    UploadContents)."""

    def __init__(
        self, settings: ServerSettings, index: ServiceIndex, metrics: ServiceMetrics | None = None
    ) -> None:
        metrics = metrics or ServiceMetrics()
        BakeRpcs.__init__(
            self, settings.max_builds, index, metrics=metrics, max_queue=settings.max_queue
        )
        PackageRpcs.__init__(self, settings.state_dir / "contents", metrics)


@dataclass
class RunningServer:
    """A started server: its address, and how to stop it."""

    server: grpc.Server
    health: health.HealthServicer
    port: int
    service: BakeryService
    admin: AdminService
    index: ServiceIndex
    http: "HttpSide | None" = None
    """The HTTP side, when `http_port` was set."""

    @property
    def http_port(self) -> int | None:
        return None if self.http is None else self.http.port

    def stop(self, grace: float | None = 10.0) -> None:
        """Stop answering: health goes NOT_SERVING and /readyz 503 first, running calls and
        builds get `grace` seconds, then the builds still running are cancelled (no tag
        written), their callers answered, and both ports closed."""
        self.health.enter_graceful_shutdown()
        if self.http is not None:
            self.http.drain()
        stopped = self.server.stop(grace)
        self.service.finish_builds(grace or 0.0)
        stopped.wait()
        self.service.stop_builds()
        if self.http is not None:
            self.http.stop()


def start(settings: ServerSettings) -> RunningServer:
    """Build and start the server on `settings.host:settings.port` (port 0: any free one).

    Without any token it listens on loopback only (auth.check_bind raises otherwise)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    index = settings.index or SqliteIndex(settings.state_dir / INDEX_FILE)
    check_bind(settings.host, index)
    listener = None
    if settings.http_port is not None:  # bound first: a busy port fails before gRPC starts
        from frontends.service.http import bind

        listener = bind(settings.host, settings.http_port)
    server = grpc.server(
        futures.ThreadPoolExecutor(settings.workers, "bakery-rpc"),
        interceptors=[TokenCheck(index)],
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
    )
    metrics = ServiceMetrics()
    service = BakeryService(settings, index, metrics)
    bakery_pb2_grpc.add_BakeryServicer_to_server(service, server)
    admin = AdminService(index, service)
    admin.prune_contents = lambda unused_for, dry: service.prune_contents(unused_for, dry_run=dry)
    bakery_pb2_grpc.add_AdminServicer_to_server(admin, server)
    checks = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    for name in (*SERVICE_NAMES, ""):
        checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    except RuntimeError:
        if listener is not None:
            listener.close()
        raise
    server.start()
    running = RunningServer(server, checks, port, service, admin, index)
    if listener is not None:
        from frontends.service.http import HttpSide

        running.http = HttpSide(listener, service, index, metrics)
        running.http.start()
    return running
