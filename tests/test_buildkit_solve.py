"""Solves of LLB graphs built in Python, in the real Docker Engine's BuildKit, on the bake's
Debian base from the test registry: build context in through FileSync, result out through
FileSend, progress as Bakery's events, failures as typed errors with the log tail."""

from pathlib import Path

import pytest

from bakery.buildkit.address import buildkit_address
from bakery.buildkit.client import BuildKit
from bakery.buildkit.llb import SCRATCH, Graph, Mount, Output
from bakery.buildkit.run import export
from bakery.errors import ImageBakingException
from stagekit.cancel import Cancelled, CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import Event, LogLine, Progress, Reporter

PATH = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


@pytest.fixture
def buildkit(docker_engine):
    with BuildKit(buildkit_address("docker")) as client:
        yield client


def _run(buildkit, base: str, script: str, context: Path | None, out: Path, events: list):
    def make(session_id: str) -> tuple[Graph, Output]:
        graph = Graph("linux/amd64")
        mounts = [Mount("/", graph.image(base)), Mount("/out", SCRATCH, output=True)]
        if context is not None:
            mounts.append(Mount("/ctx", graph.local("context", session_id), readonly=True))
        outputs = graph.exec(["/bin/sh", "-c", script], mounts=mounts, env=PATH, name="script")
        return graph, outputs["/out"]

    export(
        buildkit,
        make,
        context=context,
        destination=out,
        reporter=Reporter("test", events=events.append),
        cancel=CancelToken(),
        what="the test script",
    )


def test_context_in_exec_on_the_base_result_out(buildkit, pushed_debian_base, tmp_path):
    context = tmp_path / "context"
    (context / "nested").mkdir(parents=True)
    (context / "nested" / "data.bin").write_bytes(bytes(range(256)) * 1000)
    (context / "run.py").write_text("print('from the context')\n")
    (context / "run.py").chmod(0o755)
    out = tmp_path / "out"
    events: list[Event] = []
    script = (
        "python3 /ctx/run.py > /out/printed && sha256sum /ctx/nested/data.bin > /out/sum "
        "&& stat -c %a /ctx/run.py > /out/mode && cat /etc/debian_version > /out/debian"
    )
    _run(buildkit, pushed_debian_base, script, context, out, events)
    assert (out / "printed").read_text() == "from the context\n"
    import hashlib

    expected = hashlib.sha256((context / "nested" / "data.bin").read_bytes()).hexdigest()
    assert (out / "sum").read_text().split()[0] == expected
    assert (out / "mode").read_text().strip() == "755"
    assert (out / "debian").read_text().startswith("12")
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].stage == "build" and progress[-1].done == progress[-1].total
    assert any(isinstance(e, LogLine) and "script" in e.message for e in events)


def test_a_failed_step_names_itself_and_shows_the_last_50_lines(
    buildkit, pushed_debian_base, tmp_path
):
    script = "for i in $(seq 1 80); do echo line-$i; done; exit 3"
    with pytest.raises(ImageBakingException) as caught:
        _run(buildkit, pushed_debian_base, script, None, tmp_path / "out", [])
    message = caught.value.message
    assert "the test script" in message and "'script'" in message
    assert "exit code: 3" in message
    assert "line-31\n" in message and "line-80" in message
    assert "line-30\n" not in message


def test_the_exec_has_no_network(buildkit, pushed_debian_base, tmp_path):
    script = (
        'python3 -c "import socket; s = socket.socket(); s.settimeout(5); '
        "s.connect(('deb.debian.org', 80))\" 2> /out/error; "
        "python3 -c 'import socket; print(sorted(n for _, n in socket.if_nameindex()))' "
        "> /out/interfaces; true"
    )
    out = tmp_path / "out"
    _run(buildkit, pushed_debian_base, script, None, out, [])
    assert (out / "error").read_text().strip(), "the connection did not fail"
    assert (out / "interfaces").read_text().strip() == "['lo']"


def test_cancelling_stops_the_build_in_buildkit(buildkit, pushed_debian_base, tmp_path):
    cancel = CancelToken()

    def watch(event: Event) -> None:
        if isinstance(event, LogLine) and "waiting-for-cancel" in event.message:
            cancel.cancel("the test cancelled it")

    def make(_session: str) -> tuple[Graph, Output]:
        graph = Graph("linux/amd64")
        script = "echo waiting-for-cancel; exec sleep 3600"
        mounts = [Mount("/", graph.image(pushed_debian_base)), Mount("/out", SCRATCH, output=True)]
        outputs = graph.exec(["/bin/sh", "-c", script], mounts=mounts, env=PATH, name="sleeper")
        return graph, outputs["/out"]

    with pytest.raises(Cancelled) as caught:
        export(
            buildkit,
            make,
            context=None,
            destination=tmp_path / "out",
            reporter=Reporter("test", events=watch),
            cancel=cancel,
            what="a sleeper",
        )
    assert caught.value.kind is ErrorKind.CANCELLED
    assert not (tmp_path / "out").exists()


def test_the_buildkitd_path_tunnels_the_session_through_control(
    docker_engine, pushed_debian_base, tmp_path
):
    """The client's plain-gRPC path (a standalone buildkitd): here the engine's Control API
    behind a splice socket stands in for buildkitd's unix socket, so the session goes
    through Control.Session (FileSync in, FileSend out) instead of the engine's /session."""
    from bakery.buildkit.splice import GrpcSplice

    engine = buildkit_address("docker").target
    splice = GrpcSplice(engine)
    try:
        with BuildKit(buildkit_address(f"unix://{splice.path}")) as client:
            assert client.address.kind == "buildkitd"
            assert client.list_workers()
            context = tmp_path / "context"
            context.mkdir()
            (context / "note.txt").write_text("through the tunnel\n")
            out = tmp_path / "out"
            _run(client, pushed_debian_base, "cp /ctx/note.txt /out/", context, out, [])
        assert (out / "note.txt").read_text() == "through the tunnel\n"
    finally:
        splice.close()


def test_the_session_answers_registry_credentials_from_the_docker_config(
    buildkit, basic_auth_registry, debian_base, tmp_path, monkeypatch
):
    import base64
    import dataclasses
    import json
    import uuid

    from bakery.oci.remote import RegistryPublisher

    config = tmp_path / "docker-config"
    config.mkdir()
    secret = base64.b64encode(b"baker:bakery-secret").decode()
    auths = {"auths": {basic_auth_registry.host: {"auth": secret}}}
    (config / "config.json").write_text(json.dumps(auths))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    # A manifest no engine has seen (its layers may be cached): BuildKit must fetch it.
    unique = dataclasses.replace(debian_base, annotations={"test": uuid.uuid4().hex})
    with RegistryPublisher(f"{basic_auth_registry.host}/private/base") as publisher:
        base = publisher.publish(unique, "bookworm")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with pytest.raises(ImageBakingException, match=r"401|nauthorized"):
        _run(buildkit, base, "true", None, tmp_path / "refused", [])
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    out = tmp_path / "out"
    _run(buildkit, base, "cat /etc/debian_version > /out/debian", None, out, [])
    assert (out / "debian").read_text().startswith("12")
