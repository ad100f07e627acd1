"""The process runtime end to end: a really baked image, a code package, real processes.

The image is baked on the cached Debian base into an OCI layout directory (no registry), with
`six` (a module) and `pyflakes` (an entry point) so the host env's imports and scripts can be
checked. Every test tears its workers and proxy down, even when it fails.
"""

import io
import json
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bakery.bake import bake_image
from bakery.layers.tarball import LayerEntry, LayerFile, LayerSymlink, write_layer
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import OCI_LAYER_GZIP, Image
from deployer import AppDeployer
from deployer.exceptions import AppConfigError, AppCrashLoopException
from deployer.host.auth import api_auth_headers, new_token
from deployer.host.procfs import is_loopback, tcp_listeners
from deployer.host.proxy import free_port
from deployer.host.secrets import SecretStore
from deployer.model.config import AppConfig
from deployer.orchestration.lifecycle import app_deploy
from deployer.orchestration.readiness import Snapshot, wait_until_ready
from deployer.orchestration.records import AppRecord
from deployer.runtimes.base import Worker
from deployer.runtimes.process import ProcessRuntime
from deployer.runtimes.process.env import host_env
from deployer.runtimes.process.image import LayerBlob
from deployer.runtimes.process.unpack import shebang, unpack
from packager import PackagedCode, package_code
from stagekit.dirs import data_dir
from stagekit.progress import Reporter
from tests.fixtures.services import isolate_bakery_dirs

HELLO_APP = Path(__file__).parent.parent / "examples" / "hello-app"
SERVE = "python server.py"


@dataclass(frozen=True)
class HelloBuild:
    image: str
    base: str
    code: PackagedCode


@pytest.fixture(scope="module")
def hello_build(tmp_path_factory, debian_base: Image) -> Iterator[HelloBuild]:
    """hello-app's code, and an image baked with six and pyflakes into a local OCI layout.

    The cache, data and layout directories stay set for the module, so they start empty.
    """
    root = tmp_path_factory.mktemp("process")
    with pytest.MonkeyPatch.context() as patch:
        base = LayoutPublisher(root / "bases").publish(debian_base, "bookworm")
        isolate_bakery_dirs(patch, root, base_image=base, runtime=None)
        patch.delenv("BAKERY_REGISTRY", raising=False)
        baked = bake_image(pypi={"six": "", "pyflakes": ""}, target="layout")
        code = package_code([str(HELLO_APP)], store=str(root / "store"))
        yield HelloBuild(baked.image, base, code)


@pytest.fixture
def app_name(hello_build: HelloBuild) -> Iterator[str]:
    """A unique app name; its processes and proxy are gone after the test, even a failed one."""
    name = f"hello-{uuid.uuid4().hex[:8]}"
    yield name
    runtime = ProcessRuntime()
    runtime.remove(name)
    runtime.unexpose(AppRecord.new(name, runtime.kind))


def hello_config(build: HelloBuild, name: str, commands: list[str], **extra) -> AppConfig:
    return AppConfig.from_kwargs(
        name=name,
        port=8000,
        image=build.image,
        code_package=build.code,
        commands=commands,
        **extra,
    )


def wait_for(runtime: ProcessRuntime, name: str, version: str, replicas: int) -> list[Worker]:
    """`version`'s workers once `replicas` of them run and answer on their port."""

    def poll() -> Snapshot:
        statuses = tuple(worker.status for worker in runtime.workers(name))
        return Snapshot(version, replicas, statuses)

    wait_until_ready(
        poll,
        "all_running",
        app_id=name,
        version=version,
        max_wait_time=120,
        readiness_wait_time=0.1,
        logger_fn=lambda _: None,
        logs_fn=lambda worker_id: runtime.logs(name)[worker_id],
    )
    return [worker for worker in runtime.workers(name) if worker.version == version]


def wait_for_phase(runtime: ProcessRuntime, name: str, phase: str) -> list[Worker]:
    """The app's workers once all are in `phase`; fails with their state after 120 s."""
    for _ in range(1200):
        workers = runtime.workers(name)
        if workers and all(worker.status.phase == phase for worker in workers):
            return workers
        time.sleep(0.1)
    pytest.fail(f"workers of {name} never all became {phase}: {runtime.workers(name)}")


START_AND_EXIT = """
import json, sys
from deployer.model.config import AppConfig
from deployer.runtimes.process import ProcessRuntime
from packager import PackagedCode
kwargs = json.loads(sys.argv[1])
kwargs["code_package"] = PackagedCode(*kwargs["code_package"])
ProcessRuntime().start(AppConfig.from_kwargs(**kwargs), "v1")
"""


def test_workers_outlive_the_process_that_started_them_and_serve_from_the_image_env(
    hello_build, app_name
):
    SecretStore().put("hello-keys", {"API_KEY": "s3cret"})
    commands = [
        'python -c "import six"',
        "pyflakes --version",
        'test "$GREETING:$API_KEY" = "hi:s3cret"',
        SERVE,
    ]
    kwargs = {
        "name": app_name,
        "port": 8000,
        "image": hello_build.image,
        "code_package": list(hello_build.code),
        "commands": commands,
        "replicas": {"fixed": 2},
        "environment": {"GREETING": "hi"},
        "secrets": ["hello-keys"],
    }
    subprocess.run([sys.executable, "-c", START_AND_EXIT, json.dumps(kwargs)], check=True)

    # this process finds them from what the other one recorded
    runtime = ProcessRuntime()
    workers = wait_for(runtime, app_name, "v1", 2)
    assert [w.worker_id for w in workers] == [f"{app_name}-v1-0", f"{app_name}-v1-1"]
    assert len({w.address for w in workers}) == 2
    for worker in workers:
        assert worker.status.ready and worker.status.restarts == 0
        assert worker.internal_url == f"http://{worker.address}"
        response = httpx.get(worker.internal_url, timeout=5)
        assert response.status_code == 200
        assert response.text.startswith("hello from ")
    logs = runtime.logs(app_name)
    assert sorted(logs) == [w.worker_id for w in workers]
    for lines in logs.values():
        assert any(" Python 3.11" in line for line in lines)  # `pyflakes --version` ran
        assert any('"GET / HTTP/1.1" 200' in line for line in lines)

    # starting a version whose workers run changes nothing: same ports, logs not rotated
    runtime.start(AppConfig.from_kwargs(**{**kwargs, "code_package": hello_build.code}), "v1")
    assert [w.address for w in runtime.workers(app_name)] == [w.address for w in workers]
    assert runtime.logs(app_name, previous=True) == {w.worker_id: [] for w in workers}


def test_env_has_the_packages_and_scripts_that_run_on_the_host_python(hello_build):
    env = host_env(hello_build.image, Reporter("test"))
    python = env / "bin" / "python"

    result = subprocess.run(
        [python, "-c", "import six, sys; print(sys.prefix, sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split(" ", 1) == [str(env), "(3, 11)\n"]
    script = (env / "bin" / "pyflakes").read_bytes()
    assert script.startswith(shebang(str(python)) + b"\n")
    assert b"/opt/bakery/env" not in script
    result = subprocess.run([env / "bin" / "pyflakes", "--version"], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_env_is_built_once_per_image(hello_build, app_name, tmp_path, monkeypatch):
    """Counted through the runtime's progress messages: one build for two starts."""
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))  # nothing built yet
    messages: list[str] = []
    runtime = ProcessRuntime(logger=messages.append)
    config = hello_config(hello_build, app_name, [SERVE])

    runtime.start(config, "v1")
    runtime.start(config, "v2")

    assert len(wait_for(runtime, app_name, "v2", 1)) == 1
    builds = [m for m in messages if m.startswith("Building the host environment")]
    assert len(builds) == 1
    assert len(list((tmp_path / "cache" / "deployer" / "process-envs").iterdir())) == 1


def test_a_command_that_exits_is_a_crash_loop_and_its_log_becomes_previous(hello_build, app_name):
    config = hello_config(hello_build, app_name, ["echo starting up", "echo broken >&2", "exit 3"])
    runtime = ProcessRuntime()
    runtime.start(config, "v1")

    (worker,) = wait_for_phase(runtime, app_name, "crashloop")
    assert worker.status.reason == "command exited with code 3"
    assert (worker.status.ready, worker.status.restarts, worker.address) == (False, 0, None)
    assert sorted(runtime.logs(app_name)[worker.worker_id]) == ["broken", "starting up"]

    # starting the version again relaunches the exited worker; the crash is now "previous"
    runtime.start(config, "v1")
    wait_for_phase(runtime, app_name, "crashloop")
    assert sorted(runtime.logs(app_name, previous=True)[worker.worker_id]) == [
        "broken",
        "starting up",
    ]


def test_stop_keeps_workers_and_logs_remove_forgets_them(hello_build, app_name):
    runtime = ProcessRuntime()
    config = hello_config(hello_build, app_name, [SERVE])
    runtime.start(config, "v1")
    (old,) = wait_for(runtime, app_name, "v1", 1)
    httpx.get(old.internal_url, timeout=5)
    runtime.start(config, "v2")
    (new,) = wait_for(runtime, app_name, "v2", 1)
    assert [w.version for w in runtime.workers(app_name)] == ["v1", "v2"]  # oldest first

    runtime.stop(app_name, "v1")
    stopped, running = runtime.workers(app_name)
    assert (stopped.status.phase, stopped.status.reason, stopped.address) == (
        "terminated",
        "stopped",
        None,
    )
    assert running.status.phase == "running"
    with pytest.raises(httpx.ConnectError):
        httpx.get(old.internal_url, timeout=5)
    assert any('"GET / HTTP/1.1" 200' in line for line in runtime.logs(app_name)[old.worker_id])

    # a stopped worker starts again, its earlier execution's log kept as the previous one
    runtime.start(config, "v1")
    (restarted,) = wait_for(runtime, app_name, "v1", 1)
    previous = runtime.logs(app_name, previous=True)[restarted.worker_id]
    assert any('"GET / HTTP/1.1" 200' in line for line in previous)

    runtime.remove(app_name, keep_version="v2")
    assert [w.worker_id for w in runtime.workers(app_name)] == [new.worker_id]
    with pytest.raises(httpx.ConnectError):
        httpx.get(restarted.internal_url, timeout=5)
    runtime.remove(app_name)
    assert runtime.workers(app_name) == []
    assert runtime.logs(app_name) == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(new.internal_url, timeout=5)


def test_expose_fronts_the_workers_with_the_local_proxy(hello_build, app_name):
    runtime = ProcessRuntime()
    runtime.ping()
    runtime.start(hello_config(hello_build, app_name, [SERVE], replicas={"fixed": 2}), "v1")
    workers = wait_for(runtime, app_name, "v1", 2)
    record = AppRecord.new(app_name, runtime.kind)
    record.public_port = free_port()
    record.api_token = new_token()

    runtime.expose(record, workers)

    url = runtime.public_url(record)
    assert url == f"http://127.0.0.1:{record.public_port}"
    assert httpx.get(url, timeout=5).status_code == 401
    response = httpx.get(url, headers=api_auth_headers(record.api_token), timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("hello from ")
    runtime.unexpose(record)
    assert runtime.public_url(record) is None


def test_unsupported_parameters_are_refused_with_reasons(hello_build, app_name):
    runtime = ProcessRuntime()
    config = AppConfig.from_kwargs(
        name=app_name,
        port=8000,
        code_package=hello_build.code,
        resources={"cpu": "1", "memory": "1Gi"},
        compute_pools=["gpu-pool"],
    )
    with pytest.raises(AppConfigError) as caught:
        runtime.start(config, "v1")

    fields = [problem.split(":", 1)[0] for problem in caught.value.problems]
    assert fields == ["image", "commands", "compute_pools", "resources.cpu", "resources.memory"]
    assert "cannot enforce limits" in caught.value.message
    assert runtime.workers(app_name) == []


def test_an_image_not_baked_by_bakery_is_refused(hello_build, app_name):
    config = hello_config(hello_build, app_name, [SERVE]).replace(image=hello_build.base)
    with pytest.raises(AppConfigError, match="not baked by bakery"):
        ProcessRuntime().start(config, "v1")


def test_a_host_without_the_image_python_is_told_what_to_install(
    hello_build, app_name, tmp_path, monkeypatch
):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))  # no env built yet
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.11 on it
    with pytest.raises(AppConfigError) as caught:
        ProcessRuntime().start(hello_config(hello_build, app_name, [SERVE]), "v1")

    assert "python3.11, which is not on PATH" in caught.value.message
    assert "docker runtime" in caught.value.message
    assert not (tmp_path / "cache" / "deployer" / "process-envs").exists()


@pytest.mark.parametrize(
    ("name", "entry", "refusal"),
    [
        ("opt/bakery/env/../../../evil", LayerFile(0o644, 4, io.BytesIO(b"evil")), "outside"),
        ("opt/bakery/env/lib/python3.11/site-packages/evil", LayerSymlink("/etc"), "regular"),
    ],
)
def test_unsafe_layer_members_are_refused(tmp_path, name: str, entry: LayerEntry, refusal):
    layer = tmp_path / "layer.tar.gz"
    with layer.open("wb") as out:
        write_layer({name: entry}, out)
    venv = tmp_path / "venv"
    with pytest.raises(AppConfigError, match=refusal):
        unpack(
            [LayerBlob(layer, OCI_LAYER_GZIP)],
            "/opt/bakery/env",
            venv,
            python="3.11",
            interpreter=venv / "bin" / "python",
        )
    assert not (tmp_path / "evil").exists()
    assert not (venv / "lib" / "python3.11" / "site-packages" / "evil").is_symlink()


def test_app_deployer_on_the_process_runtime(hello_build, app_name):
    """The whole reference flow with no engine: deploy, proxy with auth, list, scale, delete."""
    runtime = ProcessRuntime()
    app = AppDeployer(
        runtime=runtime,
        name=app_name,
        port=8000,
        image=hello_build.image,
        code_package=hello_build.code,
        commands=[SERVE],
        replicas={"fixed": 2},
        auth={"type": "API"},
        tags=[{"suite": "process"}],
    ).deploy(readiness_condition="all_running", readiness_wait_time=0.1, logger_fn=print)

    assert httpx.get(app.public_url, timeout=5).status_code == 401
    assert httpx.get(app.public_url, headers=app.auth(), timeout=5).status_code == 200
    assert [r["ready"] for r in app.replicas()] == [True, True]
    [listed] = AppDeployer.list_deployments(tags=[{"suite": "process"}], runtime=runtime)
    assert (listed.name, listed.deployed_version) == (app_name, app.deployed_version)

    app.scale_to_zero()
    assert [r["status"] for r in app.replicas()] == ["terminated", "terminated"]
    assert httpx.get(app.public_url, timeout=5).status_code == 503

    app.delete()
    assert AppDeployer.list_deployments(name=app_name, runtime=runtime) == []
    assert runtime.workers(app_name) == []


FAST = {"readiness_wait_time": 0.1, "max_wait_time": 120, "logger_fn": lambda _: None}
BYPASS_THE_GUARD = (
    # binds with the C socket type, as uvloop or a non-Python server would
    'python -c "import _socket, os, time; s = _socket.socket(); '
    "s.bind(('0.0.0.0', int(os.environ['PORT']))); s.listen(); time.sleep(600)\""
)


def non_loopback_address() -> str:
    """This machine's address on its default route (connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError as error:
            pytest.fail(f"this machine has no route off loopback to test with: {error}")
        address = probe.getsockname()[0]
    assert not address.startswith("127."), address
    return address


def test_runtime_is_given_by_name_and_an_unknown_name_lists_the_valid_ones(hello_build, app_name):
    """The README's runtime="process" (it raised AttributeError); a typo names the choices."""
    app = AppDeployer(
        runtime="process",
        name=app_name,
        port=8000,
        image=hello_build.image,
        code_package=hello_build.code,
        commands=[SERVE],
    ).deploy(**FAST)
    assert httpx.get(app.public_url, timeout=5).status_code == 200
    [listed] = AppDeployer.list_deployments(name=app_name, runtime="process")
    assert listed.info()["runtime"] == "process"
    assert AppDeployer.get(app_name, runtime="process").public_url == app.public_url

    for call in (
        lambda: AppDeployer(runtime="podman", name=app_name, port=8000),
        lambda: AppDeployer.list_deployments(runtime="podman"),
        lambda: AppDeployer.get(app_name, runtime="podman"),
    ):
        with pytest.raises(AppConfigError, match="'podman' is unknown; use one of docker, process"):
            call()
    with pytest.raises(AppConfigError, match="neither a runtime name"):
        AppDeployer(runtime=42, name=app_name, port=8000)


def test_app_deploy_cleans_up_apps_deployed_on_a_runtime_other_than_the_default(
    hello_build, app_name, monkeypatch
):
    monkeypatch.setenv("BAKERY_RUNTIME", "docker")  # the default runtime is not this app's
    runtime = ProcessRuntime()
    with app_deploy(cleanup_policy="delete") as run:
        app = AppDeployer(
            runtime=runtime,
            name=app_name,
            port=8000,
            image=hello_build.image,
            code_package=hello_build.code,
            commands=[SERVE],
        ).deploy(**FAST)
        url = app.public_url
        assert httpx.get(url, timeout=5).status_code == 200
        assert [(a.name, a.info()["runtime"]) for a in run.list()] == [(app_name, "process")]

    assert AppDeployer.list_deployments(name=app_name, runtime=runtime) == []
    assert runtime.workers(app_name) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)


def test_an_api_app_binding_every_interface_is_reachable_only_through_its_proxy(
    hello_build, app_name
):
    """hello-app binds 0.0.0.0: the env's guard moves it to loopback, so from this machine's
    network address the worker's port refuses, and the app answers only via the proxy."""
    app = AppDeployer(
        runtime="process",
        name=app_name,
        port=8000,
        image=hello_build.image,
        code_package=hello_build.code,
        commands=[SERVE],
        auth={"type": "API"},
    ).deploy(**FAST)
    assert httpx.get(app.public_url, timeout=5).status_code == 401
    assert httpx.get(app.public_url, headers=app.auth(), timeout=5).status_code == 200

    address = non_loopback_address()
    [worker] = app.replicas()
    port = int(worker["address"].rpartition(":")[2])
    assert httpx.get(f"http://127.0.0.1:{port}", timeout=5).status_code == 200  # it runs
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{address}:{port}", timeout=5)
    assert all(is_loopback(listening) for listening in tcp_listeners()[port])


def test_a_worker_listening_beyond_loopback_fails_and_is_stopped(hello_build, app_name):
    """A server the guard cannot see is not served: the deploy fails and stops it."""
    deployer = AppDeployer(
        runtime="process",
        name=app_name,
        port=8000,
        image=hello_build.image,
        code_package=hello_build.code,
        commands=[BYPASS_THE_GUARD],
        auth={"type": "API"},
    )
    with pytest.raises(AppCrashLoopException) as caught:
        deployer.deploy(**FAST)

    [record] = ProcessRuntime().store.all(app_name)
    assert caught.value.reason.startswith(f"listens on 0.0.0.0 port {record.port}, where ")
    assert "bind $HOST (127.0.0.1)" in caught.value.message
    [worker] = caught.value.deployed_app.replicas()
    assert worker["status"] == "terminated"  # stopped: nothing listens any more
    assert record.port not in tcp_listeners()


def test_deployer_state_and_logs_are_readable_by_their_owner_only(hello_build, app_name):
    SecretStore().put("owner-only", {"TOKEN": "s3cret"})
    app = AppDeployer(
        runtime="process",
        name=app_name,
        port=8000,
        image=hello_build.image,
        code_package=hello_build.code,
        commands=[SERVE],
        auth={"type": "API"},
        secrets=["owner-only"],
    ).deploy(**FAST)
    assert httpx.get(app.public_url, headers=app.auth(), timeout=5).status_code == 200

    state = data_dir() / "deployer"
    [worker] = app.replicas()
    directories = [
        state,
        state / "process",
        state / "process" / "workers",
        state / "process" / "workers" / app_name,
        state / "proxy",
        state / "proxy" / "process",
        state / "proxy" / "process" / app_name,
        state / "secrets",
    ]
    files = [
        state / "process" / f"{app_name}.json",
        state / "process" / "workers" / app_name / f"{worker['workerId']}.log",
        state / "proxy" / "process" / app_name / "access.log",
        state / "proxy" / "process" / app_name / "error.log",
        state / "secrets" / "owner-only.json",
    ]
    assert (state / "proxy" / "process" / app_name / "access.log").stat().st_size > 0
    assert {str(d): oct(stat.S_IMODE(d.stat().st_mode)) for d in directories} == {
        str(d): "0o700" for d in directories
    }
    assert {str(f): oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {
        str(f): "0o600" for f in files
    }
