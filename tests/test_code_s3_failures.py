"""A code upload to S3 that dies on the wire leaves no object (and no open multipart upload).

The S3 endpoint is the real moto_server; between it and boto3 sits a TCP relay that drops a
connection once its client has sent more than a few hundred KB, so every request with a
large body fails the way a broken network fails it, while small requests pass.
"""

import os
import socket
import threading

import pytest

from packager import CodePackagingException, package_code
from packager.stores.s3 import _TRANSFER

_CUT_AFTER = 256 * 1024


class CuttingRelay:
    """Relays 127.0.0.1:`port` to `upstream_port`, closing a connection (both ways) once
    the client has sent more than `limit` bytes on it."""

    def __init__(self, upstream_port: int, limit: int):
        self.upstream_port = upstream_port
        self.limit = limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        sent = 0
        try:
            while data := source.recv(64 * 1024):
                sent += len(data) if counted else 0
                if sent > self.limit:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def cutting_endpoint(s3_bucket, s3_endpoint, monkeypatch):
    relay = CuttingRelay(s3_endpoint.port, _CUT_AFTER)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{relay.port}")
    yield s3_bucket
    relay.close()


@pytest.mark.parametrize(
    "size",
    [2 * 1024 * 1024, _TRANSFER.multipart_threshold + 4 * 1024 * 1024],
    ids=["single-put", "multipart"],
)
def test_a_failed_upload_leaves_no_object(
    cutting_endpoint, s3_endpoint, tmp_path, monkeypatch, size
):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "data.txt", "wb") as handle:  # incompressible: the tarball is as large
        for _ in range(size // (1024 * 1024)):
            handle.write(os.urandom(1024 * 1024))

    with pytest.raises(CodePackagingException, match="cannot upload a package to"):
        package_code([str(src)], store=f"s3://{cutting_endpoint}/code")

    client = s3_endpoint.client()
    assert client.list_objects_v2(Bucket=cutting_endpoint).get("Contents", []) == []
    assert client.list_multipart_uploads(Bucket=cutting_endpoint).get("Uploads", []) == []
