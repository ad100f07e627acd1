"""The gRPC server: Bakery's services, health checking and reflection on one port.

Each RPC group lives in its own module; `BakeryService` joins the bake RPCs and the package
RPCs into the one `bakery.v1.Bakery` service the proto declares.
"""

from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from frontends.service.admin import AdminService, Load
from frontends.service.auth import TokenCheck, check_bind
from frontends.service.bakes import BakeRpcs
from frontends.service.packages import PackageRpcs
from frontends.service.state import INDEX_FILE, ServiceIndex, SqliteIndex
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.api.calls import MAX_MESSAGE_BYTES
from stagekit.dirs import data_dir

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
    workers: int = 64
    """Threads answering RPCs: each streaming Bake holds one while its client listens."""
    state_dir: Path = field(default_factory=lambda: data_dir() / "service")
    index: ServiceIndex | None = None
    """Bakes, tokens and history; None: the SQLite index in `state_dir`."""


class BakeryService(BakeRpcs, PackageRpcs, bakery_pb2_grpc.BakeryServicer):
    """`bakery.v1.Bakery`: bakes (Bake, Watch) and code packages (PackageCode,
    UploadContents)."""

    def __init__(self, settings: ServerSettings, index: ServiceIndex) -> None:
        BakeRpcs.__init__(self, settings.max_builds, index)
        PackageRpcs.__init__(self, settings.state_dir / "contents")


@dataclass
class RunningServer:
    """A started server: its address, and how to stop it."""

    server: grpc.Server
    health: health.HealthServicer
    port: int
    service: BakeryService
    admin: AdminService
    index: ServiceIndex

    def stop(self, grace: float | None = 10.0) -> None:
        """Stop answering: health goes NOT_SERVING first, running calls get `grace` seconds,
        then the builds still running are cancelled (no tag written)."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.service.stop_builds()
        self.admin.close()


def start(settings: ServerSettings) -> RunningServer:
    """Build and start the server on `settings.host:settings.port` (port 0: any free one).

    Without any token it listens on loopback only (auth.check_bind raises otherwise)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    index = settings.index or SqliteIndex(settings.state_dir / INDEX_FILE)
    check_bind(settings.host, index)
    server = grpc.server(
        futures.ThreadPoolExecutor(settings.workers, "bakery-rpc"),
        interceptors=[TokenCheck(index)],
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
    )
    service = BakeryService(settings, index)
    bakery_pb2_grpc.add_BakeryServicer_to_server(service, server)
    admin = AdminService(index, settings.max_builds)
    admin.bake_load = lambda: Load(len(service.slots.waiting), service.slots.running)
    admin.prune_contents = lambda unused_for, dry: service.prune_contents(unused_for, dry_run=dry)
    bakery_pb2_grpc.add_AdminServicer_to_server(admin, server)
    checks = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    for name in (*SERVICE_NAMES, ""):
        checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    server.start()
    return RunningServer(server, checks, port, service, admin, index)
