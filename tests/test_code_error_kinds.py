"""Every packager failure says what kind it is, so a service maps it to a status code and a
client knows whether a retry can help. Each failure below is real: a closed port, a missing
object or bucket, a bad path, a tampered package."""

import socket
import tarfile
from pathlib import Path

import botocore.exceptions
import pytest

from packager import CodePackagingException, fetch_code, package_code
from stagekit.errors import ErrorKind

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def src(tmp_path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "app.py").write_text("print('hi')\n")
    return root


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_s3_endpoint_is_unavailable(src, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(CodePackagingException, match="unreachable") as raised:
        package_code([str(src)], store="s3://bucket/code")
    assert raised.value.kind is ErrorKind.UNAVAILABLE
    assert isinstance(raised.value.__cause__, botocore.exceptions.EndpointConnectionError)


def test_a_missing_bucket_is_not_found(src, s3_bucket):
    with pytest.raises(CodePackagingException, match="bucket does not exist") as raised:
        package_code([str(src)], store=f"s3://{s3_bucket}-missing/code")
    assert raised.value.kind is ErrorKind.NOT_FOUND


def test_fetching_a_missing_key_is_not_found(src, s3_bucket, tmp_path):
    local = package_code([str(src)], store=str(tmp_path / "store"))
    on_s3 = package_code([str(src)], store=f"s3://{s3_bucket}/code")
    missing = "ab" + "0" * 62
    for package in (local, on_s3):
        url = package.url.replace(package.key, missing)
        with pytest.raises(CodePackagingException, match="no code package at") as raised:
            fetch_code(url, missing, tmp_path / "out")
        assert raised.value.kind is ErrorKind.NOT_FOUND
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("src_paths", "match"),
    [
        ([], "src_paths is empty"),
        ("./src", "not a single path"),
        (["/no/such/dir"], "does not exist"),
    ],
)
def test_a_bad_src_path_is_invalid_input(src_paths, match, tmp_path):
    with pytest.raises(CodePackagingException, match=match) as raised:
        package_code(src_paths, store=str(tmp_path / "store"))
    assert raised.value.kind is ErrorKind.INVALID_INPUT


def test_a_tampered_package_is_invalid_input(src, tmp_path):
    package = package_code([str(src)], store=str(tmp_path / "store"))
    (tmp_path / "evil.py").write_text("import os\n")
    with tarfile.open(package.url.removeprefix("file://"), "w:gz") as archive:
        archive.add(tmp_path / "evil.py", "app.py")
    with pytest.raises(CodePackagingException, match="does not match its key") as raised:
        fetch_code(package.url, package.key, tmp_path / "out")
    assert raised.value.kind is ErrorKind.INVALID_INPUT
