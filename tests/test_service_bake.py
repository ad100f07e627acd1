"""Remote bakes against a real server on loopback: the real registry, real PyPI wheels.

Most tests start the server in this process (`start()`); the first runs `bakery serve` as a
real subprocess and stops it with SIGTERM.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock
from bakery.remote import bake_remote, request_message
from bakery.request import BakeRequest
from frontends.service.bakes import BakeRpcs, Build
from frontends.service.server import ServerSettings, start
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import LogLine, Progress, Reporter
from tests.fixtures.services import free_port, wait_until
from tests.triggers import at_first, cancel_when


@pytest.fixture
def running_server(server_repo, tmp_path):
    """A server in this process with two build slots."""
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state"))
    try:
        yield running
    finally:
        running.stop(grace=1)


@pytest.fixture
def server(running_server):
    """The server's grpc:// URL and its Bakery service."""
    return f"grpc://127.0.0.1:{running_server.port}", running_server.service


def stub(url: str) -> bakery_pb2_grpc.BakeryStub:
    return bakery_pb2_grpc.BakeryStub(grpc.insecure_channel(url.removeprefix("grpc://")))


def kinds(events: list[bakery_pb2.BakeEvent]) -> list[str]:
    return [event.WhichOneof("event") for event in events]


def spec_tags(registry, repo: str) -> list[str]:
    return [tag for tag in registry.tags(repo) if tag.startswith("spec-")]


def test_bakery_serve_bakes_the_image_a_local_bake_makes(server_repo, registry, tmp_path):
    target, _ = server_repo
    port = free_port()
    env = {**os.environ, "BAKERY_CACHE_DIR": str(tmp_path / "server-cache")}
    env["BAKERY_DATA_DIR"] = str(tmp_path / "server-data")
    log = (tmp_path / "serve.log").open("wb")
    command = [str(Path(sys.executable).parent / "bakery"), "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--grace", "5"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"grpc://127.0.0.1:{port}"
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(channel)
        wait_until(lambda: _serving(health), "bakery serve")

        request = bakery_pb2.BakeRequest(pypi={"six": "", "attrs": ""}, request_id="first")
        events = list(stub(url).Bake(request, timeout=600))
        assert kinds(events)[0] == "accepted" and kinds(events)[-1] == "result"
        assert kinds(events).count("result") == 1 and "error" not in kinds(events)
        assert {"progress", "log"} <= set(kinds(events))
        built = events[-1].result
        assert built.outcome == bakery_pb2.OUTCOME_BUILT
        assert built.image.startswith(f"{target}@sha256:")

        lines: list[str] = []
        again = bake_image(pypi={"six": "", "attrs": ""}, service=url, logger=lines.append)
        assert again.image == built.image
        assert any(line.startswith("Found baked image") for line in lines)

        bake_cli = [command[0], "bake", "--pypi", "six", "--pypi", "attrs", "--json"]
        printed = subprocess.run(
            [*bake_cli, "--server", url], capture_output=True, text=True, timeout=120
        )
        assert printed.returncode == 0, printed.stderr
        assert json.loads(printed.stdout)["image"] == built.image

        local_repo = f"{registry.host}/{registry.fresh_repo('local')}"
        local = bake_image(pypi={"six": "", "attrs": ""}, registry=local_repo)
        assert local.image.split("@")[1] == built.image.split("@")[1]
        assert {p.name for p in read_lock(built.image).packages} == {"six", "attrs"}

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"stopping" in (tmp_path / "serve.log").read_bytes()


def _serving(health: health_pb2_grpc.HealthStub) -> bool:
    try:
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
    except grpc.RpcError:
        return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


@contextmanager
def slots_taken(service):
    """Every build slot held, as by long builds: bakes queue until the block ends."""
    holders = [Build(f"holder-{index}", "") for index in range(service.slots.limit)]
    for holder in holders:
        service.slots.acquire(holder)
    try:
        yield
    finally:
        for _ in holders:
            service.slots.release()


def watchers(service) -> list[int]:
    return [build.watchers for build in list(service.builds.values()) if not build.done]


def test_ten_identical_bakes_are_one_build(server, server_repo, registry):
    url, service = server
    request = BakeRequest(pypi={"six": ""})
    results = []
    logs: list[list[str]] = [[] for _ in range(10)]

    def one(index: int) -> None:
        reporter = Reporter("test", logger=logs[index].append)
        results.append(bake_remote(request, url, reporter=reporter, timeout=600))

    threads = [threading.Thread(target=one, args=(index,)) for index in range(10)]
    with slots_taken(service):  # all ten callers are attached before the build may start
        for thread in threads:
            thread.start()
        wait_until(lambda: watchers(service) == [10], "ten callers on one build")
    for thread in threads:
        thread.join()

    assert service.builds_started == 1
    assert len(results) == 10 and len({result.image for result in results}) == 1
    assert sorted(result.outcome for result in results) == ["built"] + ["joined"] * 9
    for lines in logs:  # every caller saw the queue, then the one build's own messages
        assert "Queued on the server: position 1" in lines
        assert any(line.startswith("Resolving") for line in lines)
    assert spec_tags(registry, server_repo[1]) == [f"spec-{results[0].spec_id}"]


def test_remote_bakes_are_in_the_index_admins_list_and_prune(running_server, server_repo):
    """What the Admin service lists and counts is what the Bake RPCs did."""
    url = f"grpc://127.0.0.1:{running_server.port}"
    first = bake_remote(BakeRequest(pypi={"six": ""}), url, timeout=600)
    again = bake_remote(BakeRequest(pypi={"six": ""}), url, timeout=600)
    assert (first.outcome, again.outcome) == ("built", "hit")
    (entry,) = running_server.index.entries()
    assert (entry.spec_id, entry.image, entry.hits) == (first.spec_id, first.image, 1)
    assert entry.size > 0
    assert running_server.index.outcomes() == {"built": 1, "hit": 1}


def test_watch_after_the_client_drops_gets_the_result(server, server_repo, registry):
    url, _ = server
    call = stub(url).Bake(bakery_pb2.BakeRequest(pypi={"attrs": ""}), timeout=600)
    accepted = next(call)
    call.cancel()  # the connection drops; the build goes on for a re-attach

    events = list(stub(url).Watch(bakery_pb2.WatchRequest(build_id=accepted.accepted.build_id)))
    assert kinds(events)[-1] == "result" and kinds(events).count("result") == 1
    assert events[-1].result.outcome == bakery_pb2.OUTCOME_BUILT
    assert spec_tags(registry, server_repo[1]) == [f"spec-{events[-1].result.spec_id}"]

    with pytest.raises(grpc.RpcError) as unknown:
        list(stub(url).Watch(bakery_pb2.WatchRequest(build_id="nope")))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


class DroppingProxy:
    """A TCP relay in front of the server whose `drop()` cuts every open connection, as a
    network failure does; new connections go through again."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"grpc://127.0.0.1:{self.listener.getsockname()[1]}"
        self.port = port
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def drop(self) -> None:
        connections, self.open = self.open, []
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.drop()
        self.listener.close()


def test_a_dropped_stream_re_attaches_and_gets_the_result(server, server_repo):
    url, service = server
    proxy = DroppingProxy(int(url.rsplit(":", 1)[1]))
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith("Queued") and lines.count(line) == 1:
            proxy.drop()  # the connection fails after the server accepted the bake

    results = []
    with slots_taken(service):
        caller = threading.Thread(
            target=lambda: results.append(
                bake_remote(BakeRequest(pypi={"six": ""}), proxy.url, reporter=Reporter("t", log))
            )
        )
        caller.start()
        wait_until(lambda: lines.count("Queued on the server: position 1") == 2, "a re-attach")
    caller.join()
    proxy.close()

    assert any(line.startswith("warning: lost the connection") for line in lines)
    assert [result.outcome for result in results] == ["built"]
    assert service.builds_started == 1


def test_a_request_resent_with_its_request_id_joins_the_running_build(server):
    url, service = server
    first = bakery_pb2.BakeRequest(pypi={"six": ""}, request_id="retry-me")
    with slots_taken(service):
        call = stub(url).Bake(first, timeout=600)
        build_id = next(call).accepted.build_id
        call.cancel()  # the client gave up waiting and sends the same request again
        resent = stub(url).Bake(first, timeout=600)
        assert next(resent).accepted.build_id == build_id
    events = list(resent)
    assert events[-1].result.outcome == bakery_pb2.OUTCOME_JOINED
    assert service.builds_started == 1


def test_a_deadline_cancels_a_bake_nobody_else_waits_for(server, server_repo, registry):
    url, service = server
    request = bakery_pb2.BakeRequest(pypi={"six": "", "attrs": ""})
    with slots_taken(service):  # the bake waits for a slot past its caller's deadline
        call = stub(url).Bake(request, timeout=1.0)
        events = [next(call), next(call)]
        assert kinds(events) == ["accepted", "queued"] and events[1].queued.position == 1
        with pytest.raises(grpc.RpcError) as expired:
            list(call)
        assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        build_id = events[0].accepted.build_id
        wait_until(lambda: service.builds[build_id].done, "the orphaned bake to stop")
        replay = stub(url).Watch(bakery_pb2.WatchRequest(build_id=build_id), timeout=60)
        with pytest.raises(grpc.RpcError) as stopped:
            list(replay)
    assert stopped.value.code() == grpc.StatusCode.CANCELLED
    assert "deadline passed" in stopped.value.details()
    assert service.builds_started == 1 and spec_tags(registry, server_repo[1]) == []


def test_a_running_bake_stops_when_its_only_caller_goes_away(server, server_repo, registry):
    url, service = server
    service.orphan_grace = 0  # no wait for a re-attach
    request = bakery_pb2.BakeRequest(pypi={"numpy": "==2.2.6", "six": "==1.17.0"})
    call = stub(url).Bake(request, timeout=600)
    build_id = next(call).accepted.build_id
    for event in call:
        if event.HasField("progress") and event.progress.stage == "download":
            call.cancel()  # the build is running: it is downloading wheels
            break

    with pytest.raises(grpc.RpcError) as stopped:
        list(stub(url).Watch(bakery_pb2.WatchRequest(build_id=build_id), timeout=120))
    assert stopped.value.code() == grpc.StatusCode.CANCELLED
    assert "callers went away" in stopped.value.details()
    assert spec_tags(registry, server_repo[1]) == []


def test_stopping_the_server_cancels_the_builds_left_after_the_grace(
    server_repo, registry, tmp_path
):
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", max_builds=1))
    service = running.service
    call = stub(f"grpc://127.0.0.1:{running.port}").Bake(
        bakery_pb2.BakeRequest(pypi={"six": ""}), timeout=600
    )
    with slots_taken(service):
        build = service.builds[next(call).accepted.build_id]
        running.stop(grace=0.5)
    assert build.done
    assert build.events[-1].error.message == (
        "The bake stopped while queued: the server is shutting down."
    ), kinds(build.events)
    assert spec_tags(registry, server_repo[1]) == []


def test_serve_on_a_busy_port_says_so(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        bakery = str(Path(sys.executable).parent / "bakery")
        env = {**os.environ, "BAKERY_DATA_DIR": str(tmp_path / "data")}  # not the user's
        refused = subprocess.run(
            [bakery, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert refused.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr


class MetadataLog(grpc.ServerInterceptor):
    """Records each call's metadata, as the server received it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def intercept_service(self, continuation, handler_call_details):
        self.seen.append(dict(handler_call_details.invocation_metadata))
        return continuation(handler_call_details)


def _self_signed(directory: Path) -> tuple[bytes, bytes]:
    """(key, certificate) PEM for `localhost`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (directory / "server.pem").write_bytes(pem)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, pem


def test_grpcs_and_the_token_reach_the_server(server_repo, tmp_path):
    from concurrent import futures

    from frontends.service.server import BakeryService
    from frontends.service.state import SqliteIndex

    key, certificate = _self_signed(tmp_path)
    calls = MetadataLog()
    server = grpc.server(futures.ThreadPoolExecutor(8), interceptors=[calls])
    settings = ServerSettings(port=0, state_dir=tmp_path / "state")
    index = SqliteIndex(tmp_path / "index.sqlite")
    bakery_pb2_grpc.add_BakeryServicer_to_server(BakeryService(settings, index), server)
    port = server.add_secure_port("localhost:0", grpc.ssl_server_credentials([(key, certificate)]))
    server.start()
    try:
        client = {
            **os.environ,
            "BAKERY_URL": f"grpcs://localhost:{port}",
            "BAKERY_TOKEN": "s3cret",
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(tmp_path / "server.pem"),
        }
        bake = "from bakery.bake import bake_image; print(bake_image(pypi={'six': ''}).image)"
        baked = subprocess.run(
            [sys.executable, "-c", bake], env=client, capture_output=True, text=True, timeout=300
        )
    finally:
        server.stop(1).wait()
    assert baked.returncode == 0, baked.stderr
    assert baked.stdout.startswith(server_repo[0] + "@sha256:")
    assert calls.seen and all(m.get("authorization") == "Bearer s3cret" for m in calls.seen)


def test_bad_input_is_invalid_argument_with_the_librarys_message(server, tmp_path):
    url, service = server
    with pytest.raises(ImageBakingException) as local:
        BakeRequest(pypi={"six": "not a version"}).check()
    with pytest.raises(grpc.RpcError) as remote:
        list(stub(url).Bake(bakery_pb2.BakeRequest(pypi={"six": "not a version"}), timeout=60))
    assert remote.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote.value.details() == local.value.message

    escaping = bakery_pb2.SourceFile(
        path="requirements.txt", content="-r ../up.txt\n", includes={"../up.txt": "six\n"}
    )
    with pytest.raises(grpc.RpcError) as outside:
        list(stub(url).Bake(bakery_pb2.BakeRequest(requirements=escaping), timeout=60))
    assert outside.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'..'" in outside.value.details()

    broken = tmp_path / "requirements.txt"
    broken.write_text("six\n-r missing.txt\n")
    message = bakery_pb2.BakeRequest(
        requirements=bakery_pb2.SourceFile(path="requirements.txt", content=broken.read_text())
    )
    with pytest.raises(grpc.RpcError) as missing:
        list(stub(url).Bake(message, timeout=60))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert missing.value.details() == "The requirements file missing.txt does not exist."
    assert service.builds_started == 0


def test_a_requirements_file_with_an_include_bakes_remotely(server, tmp_path):
    url, _ = server
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "base.txt").write_text("six\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("attrs\n-r deps/base.txt\n")

    baked = bake_image(requirements_file=requirements, service=url)

    assert {p.name for p in read_lock(baked.image).packages} == {"six", "attrs"}


def test_remote_failures_are_typed(server):
    url, _ = server
    with pytest.raises(ImageBakingException, match="server publishes to its own registry"):
        bake_image(pypi={"six": ""}, service=url, registry="127.0.0.1:1/x")
    with pytest.raises(ImageBakingException, match="not grpc://host:port") as bad_url:
        bake_image(pypi={"six": ""}, service="http://127.0.0.1:1")
    assert bad_url.value.kind == ErrorKind.INVALID_INPUT
    with pytest.raises(ImageBakingException, match="Bakery server at") as down:
        bake_image(pypi={"six": ""}, service=f"grpc://127.0.0.1:{free_port()}", timeout=2)
    assert down.value.kind == ErrorKind.UNAVAILABLE


def test_cancel_ends_a_remote_bake_and_the_server_cancels_its_build(server, server_repo, registry):
    url, service = server
    token = CancelToken()
    events, canceller = cancel_when("download", token)  # the build is running: downloading
    with pytest.raises(ImageBakingException) as stopped:
        bake_image(
            pypi={"numpy": "==2.2.6", "six": "==1.17.0"}, service=url, cancel=token, events=events
        )
    canceller.join()
    assert stopped.value.kind is ErrorKind.CANCELLED
    assert "the test cancelled it" in stopped.value.message

    (build,) = service.builds.values()
    wait_until(lambda: build.done, "the cancelled build to stop")
    last = build.events[-1]
    assert last.error.kind == bakery_pb2.ERROR_KIND_CANCELLED
    # Cancel said so at once; the grace for a dropped connection (10 s) was not waited out.
    assert "its caller cancelled it and no other caller waits" in last.error.message
    assert spec_tags(registry, server_repo[1]) == []


def test_cancel_leaves_a_build_another_caller_waits_for(server, server_repo, registry):
    url, service = server
    token = CancelToken()
    outcome: list[BaseException] = []

    def first() -> None:
        try:
            bake_image(pypi={"six": ""}, service=url, cancel=token)
        except ImageBakingException as error:
            outcome.append(error)

    with slots_taken(service):  # the build waits for a slot while both callers attach
        caller = threading.Thread(target=first)
        caller.start()
        wait_until(lambda: watchers(service) == [1], "the first caller")
        other = stub(url).Bake(request_message(BakeRequest(pypi={"six": ""})), timeout=600)
        assert next(other).HasField("accepted")
        wait_until(lambda: watchers(service) == [2], "the second caller on the same build")
        token.cancel()
        caller.join()
        (build,) = service.builds.values()
        assert not build.cancel.cancelled  # the other caller still waits for it
    assert [error.kind for error in outcome] == [ErrorKind.CANCELLED]  # type: ignore[attr-defined]

    events = list(other)
    assert events[-1].result.outcome == bakery_pb2.OUTCOME_JOINED
    assert spec_tags(registry, server_repo[1]) == [f"spec-{events[-1].result.spec_id}"]
    assert service.builds_started == 1


class ServeProcess:
    """`bakery serve` as a real subprocess on `port`, with its own cache and data dirs (kept
    across restarts, as on a machine whose server is restarted)."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.tmp_path, self.port = tmp_path, port
        self.url = f"grpc://127.0.0.1:{port}"
        self.env = {**os.environ, "BAKERY_CACHE_DIR": str(tmp_path / "server-cache")}
        self.env["BAKERY_DATA_DIR"] = str(tmp_path / "server-data")
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        log = (self.tmp_path / f"serve-{len(self.processes) + 1}.log").open("wb")
        bakery = str(Path(sys.executable).parent / "bakery")
        process = subprocess.Popen(
            [bakery, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{self.port}"))
        wait_until(lambda: _serving(health), f"bakery serve (log: {log.name})")
        return process

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or the OOM killer."""
        process = self.processes[-1]
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def serve_process(server_repo, tmp_path):
    serving = ServeProcess(tmp_path, free_port())
    try:
        yield serving
    finally:
        serving.close()


BIG_SPEC = BakeRequest(pypi={"numpy": "==2.2.6", "six": "==1.17.0"})
"""A bake whose build phase (a 16 MB wheel to download) lasts long enough to act in it."""


def test_a_sigkilled_server_mid_bake_is_a_clear_error_and_a_restarted_one_bakes(
    serve_process, server_repo, registry
):
    serve_process.start()
    with pytest.raises(ImageBakingException) as lost:
        bake_remote(
            BIG_SPEC,
            serve_process.url,
            reporter=Reporter("t", events=at_first("download", serve_process.kill)),
        )
    assert lost.value.kind is ErrorKind.UNAVAILABLE
    assert "the server went away" in lost.value.message
    assert "Bake again once the server is back" in lost.value.message
    assert spec_tags(registry, server_repo[1]) == []  # the tag is written last: never

    serve_process.start()
    baked = bake_remote(BIG_SPEC, serve_process.url)
    assert baked.outcome == "built"
    assert spec_tags(registry, server_repo[1]) == [f"spec-{baked.spec_id}"]


def test_a_server_restarted_mid_bake_gets_the_bake_again_from_its_client(
    serve_process, server_repo, registry
):
    def restart() -> None:
        serve_process.kill()
        serve_process.start()  # the client waits here: its stream dropped meanwhile

    serve_process.start()
    lines: list[str] = []
    reporter = Reporter("t", logger=lines.append, events=at_first("download", restart))
    baked = bake_remote(BIG_SPEC, serve_process.url, reporter=reporter)
    assert baked.outcome == "built"
    assert any("no longer knows build" in line for line in lines), lines
    assert spec_tags(registry, server_repo[1]) == [f"spec-{baked.spec_id}"]


def test_a_builds_progress_reaches_its_callers_thinned_with_first_and_last_kept():
    build = Build("key", "")
    reporter = BakeRpcs._reporter(build)
    for done in range(101):
        reporter.advance("download", done, 100)
    reporter.info("downloaded")
    progress = [e.progress for e in build.events if e.HasField("progress")]
    assert (progress[0].done, progress[-1].done) == (0, 100)
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert len(progress) < 101  # the updates in between are thinned
    assert build.events[-1].log.message == "downloaded"  # log lines are never dropped


def test_a_remote_flask_requests_bake_is_the_local_image_and_runs(
    server, server_repo, registry, docker_engine, tmp_path
):
    """The issue's own case: {flask, requests} baked through the server has the digest a local
    bake of the same spec on the same base has; its events arrive in order (accepted first,
    each stage's progress never going back, the result last); the image imports both."""
    url, _service = server
    events: list = []
    remote = bake_image(pypi={"flask": "", "requests": ""}, service=url, events=events.append)
    local_repo = f"{registry.host}/{registry.fresh_repo('local-flask')}"
    local = bake_image(pypi={"flask": "", "requests": ""}, registry=local_repo)
    assert remote.image.split("@")[1] == local.image.split("@")[1]

    progress: dict[str, list[int]] = {}
    for event in events:
        if isinstance(event, Progress):
            progress.setdefault(event.stage, []).append(event.done)
    assert {"download", "layers", "upload"} <= set(progress)
    for stage, done in progress.items():
        assert done == sorted(done), stage
    assert any(isinstance(e, LogLine) and e.message.startswith("Resolving") for e in events)

    script = "import flask, requests; print(flask.__name__, requests.__name__)"
    ran = docker_engine.run("run", "--rm", remote.image, remote.python_path, "-c", script)
    assert ran.stdout.decode() == "flask requests\n", ran.stderr


def test_system_packages_and_sdists_bake_remotely_and_no_build_travels(server, docker_engine):
    url, _ = server
    events: list = []
    baked = bake_image(
        pypi={"docopt": "==0.6.2"}, system_packages=["libgomp1"], service=url, events=events.append
    )
    assert "docopt" in {p.name for p in read_lock(baked.image).packages}
    assert any("BuildKit" in getattr(event, "message", "") for event in events)
    ran = subprocess.run(
        ["docker", "run", "--rm", baked.image, "sh", "-c", "ldconfig -p | grep libgomp.so.1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr

    with pytest.raises(ImageBakingException, match="--no-build"):
        bake_image(pypi={"docopt": "==0.6.2"}, build=False, service=url, force=True)
