"""Remote code packaging against a real Bakery server on loopback (started in process), with
both real code stores as the server's: a local directory and S3 (moto_server)."""

import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import blake3
import grpc
import pytest
from typer.testing import CliRunner

from frontends.cli import app as cli
from frontends.service.server import RunningServer, ServerSettings, start
from packager import CodePackagingException, fetch_code, package_code
from packager.stores import object_name
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind
from stagekit.files import exclusive
from stagekit.progress import LogLine, Progress
from tests.fixtures.services import wait_until
from tests.triggers import cancel_when

SUFFIXES = [".py", ".txt", ".sh", ".gitignore"]


@dataclass
class Service:
    running: RunningServer
    store: Path
    url: str

    @property
    def contents(self) -> Path:
        return self.running.service.contents

    def stub(self, channel: grpc.Channel) -> bakery_pb2_grpc.BakeryStub:
        return bakery_pb2_grpc.BakeryStub(channel)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.running.port}")

    def stored_contents(self) -> list[Path]:
        return [path for path in self.contents.rglob("*") if path.is_file()]


@pytest.fixture
def service(tmp_path, monkeypatch) -> Iterator[Service]:
    """A server whose code store (its BAKERY_CODE_STORE) is a directory of its own."""
    store = tmp_path / "server-store"
    monkeypatch.setenv("BAKERY_CODE_STORE", str(store))
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "client-cache"))
    monkeypatch.delenv("BAKERY_URL", raising=False)
    monkeypatch.delenv("BAKERY_TOKEN", raising=False)
    running = start(ServerSettings(port=0, state_dir=tmp_path / "server-state"))
    try:
        yield Service(running, store, f"grpc://127.0.0.1:{running.port}")
    finally:
        running.stop(grace=0)


@pytest.fixture
def tree(tmp_path) -> Path:
    """Files of every kind the packager handles, including a .gitignore it packages and a
    file that .gitignore drops, and one file over one upload chunk and one archive chunk."""
    root = tmp_path / "tree"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "app.py").write_text("print('hello')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "data.txt").write_text("same\n")
    (root / "pkg" / "copy.txt").write_text("same\n")  # two paths, one content
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / ".gitignore").write_text("secret.py\n")
    (root / "secret.py").write_text("TOKEN = 'x'\n")
    (root / "big.txt").write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    past = time.time_ns() - 3600 * 10**9  # not being edited now: the stat cache keeps digests
    for path in root.rglob("*"):
        os.utime(path, ns=(past, past))
    return root


def _local(tree: Path, tmp_path: Path) -> tuple[str, bytes]:
    """The key and tarball bytes a local package_code of `tree` gives."""
    store = tmp_path / "local-store"
    local = package_code([str(tree)], suffixes=SUFFIXES, store=str(store))
    return local.key, (store / object_name(local.key)).read_bytes()


def _remote(tree: Path, service: Service, **options):
    return package_code([str(tree)], suffixes=SUFFIXES, service=service.url, **options)


def test_remote_package_is_the_local_package(service, tree, tmp_path):
    remote = _remote(tree, service)
    key, tarball = _local(tree, tmp_path)
    assert remote.key == key
    assert remote.url == (service.store / object_name(key)).as_uri()
    assert (service.store / object_name(key)).read_bytes() == tarball
    fetched = fetch_code(remote.url, remote.key, tmp_path / "out")
    assert (fetched / ".gitignore").read_text() == "secret.py\n"  # listed: packaged
    assert not (fetched / "secret.py").exists()  # ignored on the client: never listed
    assert (fetched / "big.txt").read_bytes() == (tree / "big.txt").read_bytes()
    assert os.stat(fetched / "run.sh").st_mode & stat.S_IXUSR
    assert [path for path in service.store.rglob(".*")] == []  # no temporary files left


def test_the_server_packages_exactly_the_list(service, tmp_path):
    """Ignore rules are the client's: a listed .gitignore that would drop every other listed
    file changes nothing on the server."""
    files = {".gitignore": b"*\n", "a.py": b"a = 1\n", "lib/b.py": b"b = 2\n"}
    listed = [
        bakery_pb2.PackageFile(path=path, size=len(data), blake3=_digest(data))
        for path, data in files.items()
    ]
    chunks = [
        bakery_pb2.ContentChunk(blake3=_digest(data), data=data, last=True)
        for data in files.values()
    ]
    with service.channel() as channel:
        stub = service.stub(channel)
        assert len(_offer(stub, *listed).missing.blake3) == 3
        stub.UploadContents(iter(chunks), timeout=10)
        packaged = _offer(stub, *listed).packaged
    fetched = fetch_code(packaged.url, packaged.key, tmp_path / "out")
    unpacked = {
        path.relative_to(fetched).as_posix(): path.read_bytes()
        for path in fetched.rglob("*")
        if path.is_file()
    }
    assert unpacked == files


def test_unchanged_tree_costs_one_call_and_no_file_bytes(service, tree):
    first = _remote(tree, service)
    rpc = service.running.service
    # Every distinct content once (copy.txt and data.txt share one).
    distinct = {
        blake3.blake3(path.read_bytes()).hexdigest(): path.stat().st_size
        for path in tree.rglob("*")
        if path.is_file() and path.name != "secret.py"
    }
    assert rpc.bytes_received == sum(distinct.values())
    assert rpc.calls == {"PackageCode": 2, "UploadContents": 1}

    received, calls = rpc.bytes_received, dict(rpc.calls)
    events = []
    again = _remote(tree, service, events=events.append)
    assert again == first
    assert [event for event in events if isinstance(event, Progress)] == []  # nothing re-read
    assert rpc.bytes_received == received
    assert rpc.calls == {**calls, "PackageCode": calls["PackageCode"] + 1}


def test_a_package_gone_from_the_store_is_made_again_from_kept_contents(service, tree):
    first = _remote(tree, service)
    object_path = service.store / object_name(first.key)
    tarball = object_path.read_bytes()
    object_path.unlink()
    received = service.running.service.bytes_received
    assert _remote(tree, service) == first
    assert object_path.read_bytes() == tarball
    assert service.running.service.bytes_received == received


def test_changed_file_sends_only_that_file(service, tree, tmp_path):
    _remote(tree, service)
    rpc = service.running.service
    received = rpc.bytes_received
    (tree / "app.py").write_text("print('changed')\n")
    changed = _remote(tree, service)
    assert rpc.bytes_received - received == len("print('changed')\n")
    assert changed.key == _local(tree, tmp_path)[0]


def _digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _offer(stub, *files: bakery_pb2.PackageFile) -> bakery_pb2.PackageReply:
    return stub.PackageCode(bakery_pb2.PackageRequest(files=files), timeout=10)


def test_tampered_upload_is_refused_and_nothing_is_stored(service):
    good = b"print('good')\n"
    listed = bakery_pb2.PackageFile(path="app.py", size=len(good), blake3=_digest(good))
    with service.channel() as channel:
        stub = service.stub(channel)
        assert list(_offer(stub, listed).missing.blake3) == [listed.blake3]
        tampered = [
            bakery_pb2.ContentChunk(blake3=listed.blake3, data=b"print('evil')\n", last=True)
        ]
        split = [  # right bytes in the first chunk, then more than the digest covers
            bakery_pb2.ContentChunk(blake3=listed.blake3, data=good),
            bakery_pb2.ContentChunk(blake3=listed.blake3, data=b"evil", last=True),
        ]
        unfinished = [bakery_pb2.ContentChunk(blake3=listed.blake3, data=good)]
        for chunks in (tampered, split, unfinished):
            with pytest.raises(grpc.RpcError) as refused:
                stub.UploadContents(iter(chunks), timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert listed.blake3 in refused.value.details()
            assert service.stored_contents() == []
            assert list(_offer(stub, listed).missing.blake3) == [listed.blake3]
        assert not service.store.exists() or list(service.store.rglob("*")) == []

        right = [bakery_pb2.ContentChunk(blake3=listed.blake3, data=good, last=True)]
        assert list(stub.UploadContents(iter(right), timeout=10).stored) == [listed.blake3]
        assert _offer(stub, listed).packaged.key


def test_a_file_changed_before_its_upload_is_a_conflict_and_not_stored(service, tree):
    """The client hashes, then reads the file again to send it: bytes that no longer match
    the digest end the upload before that file's last chunk."""

    def change_app_when_uploading(event):
        if isinstance(event, LogLine) and event.message.startswith("Uploading"):
            (tree / "app.py").write_text("print('HELLO')\n")  # same size, other bytes

    with pytest.raises(CodePackagingException, match=r"app\.py changed") as failed:
        _remote(tree, service, events=change_app_when_uploading)
    assert failed.value.kind == ErrorKind.CONFLICT
    names = {path.name for path in service.stored_contents()}
    assert _digest(b"print('hello')\n") not in names
    assert _digest(b"print('HELLO')\n") not in names
    assert not service.store.exists() or list(service.store.rglob("*.tar.gz")) == []


def _file(path="a.py", size=1, digest=None) -> bakery_pb2.PackageFile:
    return bakery_pb2.PackageFile(path=path, size=size, blake3=digest or _digest(b"x"))


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ([], "empty"),
        ([_file("/etc/passwd")], "not relative"),
        ([_file("a\0.py")], "not relative"),
        ([_file("..")], "'..'"),
        ([_file("../up.py")], "'..'"),
        ([_file("a/../../up.py")], "'..'"),
        ([_file("a//b.py")], "empty"),
        ([_file("./a.py")], "'.'"),
        ([_file("a/")], "empty"),
        ([_file("a.py"), _file("a.py")], "listed twice"),
        ([_file("a"), _file("a/b.py")], "as a file and as the directory"),
        ([_file(digest="ab" * 31)], "not a blake3 digest"),
        ([_file(digest=_digest(b"x").upper())], "not a blake3 digest"),
        ([_file(size=-1)], "negative size"),
        ([_file("a.py", 1), _file("b.py", 2)], "two sizes"),
        ([_file(size=10**12)], "over the"),
    ],
)
def test_invalid_lists_are_refused(service, files, says):
    with service.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        _offer(service.stub(channel), *files)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.value.details()


def test_a_wrong_size_for_a_stored_content_is_refused(service):
    with service.channel() as channel:
        stub = service.stub(channel)
        chunk = bakery_pb2.ContentChunk(blake3=_digest(b"x"), data=b"x", last=True)
        stub.UploadContents(iter([chunk]), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            _offer(stub, _file(size=5))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "real size" in refused.value.details()


def test_an_upload_over_the_server_limit_is_refused(service, monkeypatch):
    monkeypatch.setenv("BAKERY_CODE_MAX_BYTES", "1000")
    data = b"y" * 1001
    with service.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        chunks = [bakery_pb2.ContentChunk(blake3=_digest(data), data=data, last=True)]
        service.stub(channel).UploadContents(iter(chunks), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "BAKERY_CODE_MAX_BYTES" in refused.value.details()
    assert service.stored_contents() == []


def test_s3_as_the_servers_store(service, tree, tmp_path, s3_bucket, s3_endpoint, monkeypatch):
    monkeypatch.setenv("BAKERY_CODE_STORE", f"s3://{s3_bucket}/code")
    remote = _remote(tree, service)
    key, tarball = _local(tree, tmp_path)
    assert (remote.key, remote.url) == (key, f"s3://{s3_bucket}/code/{object_name(key)}")
    stored = s3_endpoint.client().get_object(Bucket=s3_bucket, Key=f"code/{object_name(key)}")
    assert stored["Body"].read() == tarball
    assert _remote(tree, service) == remote  # stored already: one call, nothing built


def test_bakery_url_selects_the_server_and_the_cli_takes_server(service, tree, monkeypatch):
    monkeypatch.setenv("BAKERY_URL", service.url)
    by_env = package_code([str(tree)], suffixes=SUFFIXES)
    assert by_env.url.startswith(service.store.as_uri())
    monkeypatch.delenv("BAKERY_URL")
    args = ["package", str(tree), "--server", service.url, "--json"]
    for suffix in SUFFIXES:
        args += ["--suffix", suffix]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert by_env.key in result.output


def test_client_errors_are_typed(service, tree, monkeypatch):
    with pytest.raises(CodePackagingException, match="grpc://host:port") as bad_url:
        package_code([str(tree)], service="http://127.0.0.1:1")
    assert bad_url.value.kind == ErrorKind.INVALID_INPUT
    with pytest.raises(CodePackagingException, match="drop one of them") as both:
        package_code([str(tree)], service=service.url, store="/tmp/elsewhere")
    assert both.value.kind == ErrorKind.INVALID_INPUT
    monkeypatch.setenv("BAKERY_CODE_MAX_BYTES", "1000")  # the server's limit (same process)
    with pytest.raises(CodePackagingException, match="BAKERY_CODE_MAX_BYTES") as over:
        package_code([str(tree)], service=service.url, max_bytes=10**9)
    assert over.value.kind == ErrorKind.INVALID_INPUT
    assert "Bakery service at" in str(over.value)


def test_an_unreachable_server_is_unavailable(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    listener = start(ServerSettings(port=0, state_dir=tmp_path / "gone"))
    port = listener.port
    listener.stop(grace=0)  # nothing listens on this port now
    with pytest.raises(CodePackagingException, match="UNAVAILABLE") as down:
        package_code([str(tree)], service=f"grpc://127.0.0.1:{port}", timeout=30)
    assert down.value.kind == ErrorKind.UNAVAILABLE


@contextmanager
def _recording_server(answer) -> Iterator[int]:
    """A gRPC server whose PackageCode is `answer(request, context)`: to see what the client
    sends and how it takes what a server does."""

    class Recording(bakery_pb2_grpc.BakeryServicer):
        def PackageCode(self, request, context):
            return answer(request, context)

    server = grpc.server(futures.ThreadPoolExecutor(2))
    bakery_pb2_grpc.add_BakeryServicer_to_server(Recording(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


def test_the_token_is_sent_as_a_bearer_header(tree, tmp_path, monkeypatch):
    seen: list[dict[str, str]] = []

    def record(request, context):
        seen.append(dict(context.invocation_metadata()))
        return bakery_pb2.PackageReply(packaged=bakery_pb2.PackagedCode(url="u", key="k"))

    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAKERY_TOKEN", "s3cret")
    with _recording_server(record) as port:
        package_code([str(tree)], service=f"grpc://127.0.0.1:{port}")
    assert seen[0]["authorization"] == "Bearer s3cret"


def test_a_call_past_the_deadline_is_deadline_exceeded(tree, tmp_path, monkeypatch):
    released = threading.Event()

    def hang(request, context):
        released.wait()
        return bakery_pb2.PackageReply()

    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    with _recording_server(hang) as port:
        try:
            with pytest.raises(CodePackagingException) as late:
                package_code([str(tree)], service=f"grpc://127.0.0.1:{port}", timeout=1)
        finally:
            released.set()
    assert late.value.kind == ErrorKind.DEADLINE_EXCEEDED


def test_cancel_stops_a_remote_package_mid_upload_and_nothing_is_stored(service, tmp_path):
    tree = tmp_path / "big-tree"
    tree.mkdir()
    for index in range(3):
        (tree / f"blob{index}.txt").write_bytes(bytes([index]) * (4 * 1024 * 1024))
    token = CancelToken()
    # The upload holds in its first progress event until the token is cancelled.
    events, canceller = cancel_when("upload", token, hold=True)
    with pytest.raises(CodePackagingException) as stopped:
        package_code([str(tree)], [".txt"], service=service.url, cancel=token, events=events)
    canceller.join()
    assert stopped.value.kind is ErrorKind.CANCELLED
    assert "the test cancelled it" in stopped.value.message

    assert service.running.service.bytes_received < 3 * 4 * 1024 * 1024
    incoming = service.contents / ".incoming"
    wait_until(lambda: not any(incoming.iterdir()), "the server to drop the partial upload")
    assert not service.store.exists() or not any(service.store.rglob("*.tar.gz"))


def test_cancel_ends_a_remote_package_call_the_server_is_still_answering(tmp_path, monkeypatch):
    entered, ended = threading.Event(), threading.Event()

    def slow(request, context):  # a server still assembling the package
        context.add_callback(ended.set)
        entered.set()
        ended.wait(600)
        return bakery_pb2.PackageReply()

    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "app.py").write_text("print('hi')\n")
    token = CancelToken()
    threading.Thread(target=lambda: entered.wait(600) and token.cancel(), daemon=True).start()
    with _recording_server(slow) as port:
        with pytest.raises(CodePackagingException) as stopped:
            package_code([str(tmp_path / "tree")], service=f"grpc://127.0.0.1:{port}", cancel=token)
        assert stopped.value.kind is ErrorKind.CANCELLED
        wait_until(ended.is_set, "the server to see its call cancelled")


def _age(*directories: Path, seconds: int = 7200) -> None:
    """Date every file under `directories` `seconds` back, as if written (or last used)
    then: the content store and its use records are plain files with mtimes."""
    past = time.time() - seconds
    for directory in directories:
        for path in directory.rglob("*"):
            if path.is_file():
                os.utime(path, (past, past))


def _prune(service: Service, unused_for: int, dry_run: bool = False) -> bakery_pb2.PruneReply:
    with service.channel() as channel:
        admin = bakery_pb2_grpc.AdminStub(channel)
        request = bakery_pb2.PruneRequest(unused_for_seconds=unused_for, dry_run=dry_run)
        return admin.Prune(request, timeout=60)


def test_prune_removes_contents_no_package_used_within_the_window(service, tree):
    rpc = service.running.service
    first = _remote(tree, service)  # two hours ago, say
    _age(rpc.contents, rpc.uses)
    big = (tree / "big.txt").read_bytes()
    (tree / "big.txt").unlink()
    (tree / "new.txt").write_text("new\n")
    _remote(tree, service)  # now: every content but big.txt's is in a package used now

    before = sorted(service.stored_contents())
    dry = _prune(service, 3600, dry_run=True)
    assert (dry.contents_removed, dry.content_bytes_removed) == (1, len(big))
    assert sorted(service.stored_contents()) == before  # a dry run removes nothing
    args = ["cache", "prune", "--unused-for", "1h", "--dry-run", "--server", service.url]
    printed = CliRunner().invoke(cli, args)
    assert printed.exit_code == 0, printed.output
    assert "would remove 1 uploaded file content(s) (5.2 MB)" in printed.output

    pruned = _prune(service, 3600)
    assert (pruned.contents_removed, pruned.content_bytes_removed) == (1, len(big))
    assert [path.name for path in set(before) - set(service.stored_contents())] == [_digest(big)]
    assert len(list(rpc.uses.iterdir())) == 1  # the old list's record went with it
    assert _prune(service, 3600).contents_removed == 0

    (tree / "new.txt").unlink()
    (tree / "big.txt").write_bytes(big)
    assert _remote(tree, service) == first  # still stored: answered without contents
    (service.store / object_name(first.key)).unlink()
    received = rpc.bytes_received
    assert _remote(tree, service) == first  # made again: only the pruned content is sent
    assert rpc.bytes_received - received == len(big)


def test_prune_leaves_the_contents_a_package_in_flight_needs(service, tree):
    rpc = service.running.service
    first = _remote(tree, service)
    _age(rpc.contents, rpc.uses)
    (service.store / object_name(first.key)).unlink()  # the next offer assembles it again
    results: list = []
    with exclusive(rpc.workdir / ".lock"):  # another build holds the work directory
        offer = threading.Thread(target=lambda: results.append(_remote(tree, service)))
        offer.start()
        wait_until(lambda: rpc.contents_in_use() > 0, "the offer to hold its contents")
        assert _prune(service, 3600).contents_removed == 0
    offer.join()
    assert results == [first]
    assert _prune(service, 3600).contents_removed == 0  # the list was used just now
