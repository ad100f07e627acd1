"""The code package RPCs: PackageCode and UploadContents."""

from pathlib import Path

import grpc

from stagekit.api.bakery.v1 import bakery_pb2


class PackageRpcs:
    """PackageCode and UploadContents; received contents are kept under `contents`."""

    def __init__(self, contents: Path) -> None:
        self.contents = contents

    def PackageCode(
        self, request: bakery_pb2.PackageRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.PackageReply:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "PackageCode is not implemented yet")
        raise AssertionError("abort raises")

    def UploadContents(self, requests, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "UploadContents is not implemented yet")
