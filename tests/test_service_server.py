"""A real server process on loopback answers health checks and reflection."""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from frontends.service.server import SERVICE_NAMES, ServerSettings, start


def test_health_and_reflection(tmp_path):
    running = start(ServerSettings(port=0, state_dir=tmp_path))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            checks = health_pb2_grpc.HealthStub(channel)
            for name in (*SERVICE_NAMES, ""):
                answer = checks.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            ask = reflection_pb2.ServerReflectionRequest(list_services="")
            (reply,) = stub.ServerReflectionInfo(iter([ask]), timeout=5)
            listed = {service.name for service in reply.list_services_response.service}
            assert set(SERVICE_NAMES) <= listed
        running.health.enter_graceful_shutdown()
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        running.stop(grace=1)
