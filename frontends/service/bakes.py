"""The bake RPCs: Bake and Watch."""

import grpc

from stagekit.api.bakery.v1 import bakery_pb2


class BakeRpcs:
    """Bake and Watch; `max_builds` bounds the bakes that run at once."""

    def __init__(self, max_builds: int) -> None:
        self.max_builds = max_builds

    def Bake(self, request: bakery_pb2.BakeRequest, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Bake is not implemented yet")

    def Watch(self, request: bakery_pb2.WatchRequest, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Watch is not implemented yet")
