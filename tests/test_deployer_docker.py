"""The docker runtime end to end: a baked Flask app, its code package, real containers, nginx."""

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bakery.bake import bake_image
from deployer import AppDeployer
from deployer.exceptions import (
    AppConcurrentUpgradeException,
    AppConfigError,
    AppCrashLoopException,
    AppReadinessException,
    AppUpgradeInProgressException,
    BackendUnhealthyException,
)
from deployer.host.secrets import SecretStore
from deployer.orchestration.lifecycle import RUN_TAG, app_deploy
from deployer.orchestration.plan import url_variable
from deployer.runtimes.docker import DockerRuntime
from packager import PackagedCode, package_code
from tests.fixtures.services import isolate_bakery_dirs

FLASK_APP = Path(__file__).parent.parent / "examples" / "flask-app"
FAST = {"max_wait_time": 60, "readiness_wait_time": 0.2, "logger_fn": lambda _: None}
SERVE = "flask --app app run --host 0.0.0.0 --port $PORT"


@dataclass(frozen=True)
class HelloBuild:
    image: str
    code: PackagedCode


@pytest.fixture(scope="module")
def hello_build(
    tmp_path_factory, registry_service, pushed_debian_base, docker_engine
) -> Iterator[HelloBuild]:
    """examples/flask-app's code packaged into a local store, run on an image baked from its
    requirements.txt (Flask, from PyPI).

    The deployer's caches and records (BAKERY_CACHE_DIR, BAKERY_DATA_DIR) are fresh for
    the module and stay set for it.
    """
    root = tmp_path_factory.mktemp("deployer")
    with pytest.MonkeyPatch.context() as patch:
        isolate_bakery_dirs(patch, root, base_image=pushed_debian_base, runtime="docker")
        patch.delenv("BAKERY_REGISTRY", raising=False)
        repo = registry_service.fresh_repo("deployed")
        baked = bake_image(
            requirements_file=FLASK_APP / "requirements.txt",
            registry=f"{registry_service.host}/{repo}",
        )
        code = package_code([str(FLASK_APP)], store=str(root / "store"))
        yield HelloBuild(baked.image, code)


@pytest.fixture
def app_name(hello_build) -> Iterator[str]:
    """A unique app name; the app is deleted even when the test fails."""
    name = f"hello-{uuid.uuid4().hex[:8]}"
    yield name
    for app in AppDeployer.list_deployments(name=name):
        app.delete()


def deployer(build: HelloBuild, name: str, commands: list[str], **options) -> AppDeployer:
    settings = {
        "port": 8000,
        "image": build.image,
        "code_package": build.code,
        "replicas": {"fixed": 1},
        **options,
    }
    return AppDeployer(name=name, commands=commands, **settings)


def inspect(container: str) -> dict:
    result = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)[0]


def test_two_replicas_serve_through_the_proxy_and_survive_the_process(hello_build, app_name):
    options = {
        "replicas": {"fixed": 2},
        "tags": [{"suite": "docker"}],
        "resources": {"cpu": "500m", "memory": "256Mi", "shared_memory": "64Mi"},
    }
    app = deployer(hello_build, app_name, [SERVE], **options).deploy(
        readiness_condition="all_running", **FAST
    )

    assert app.public_url is not None and app.public_url.startswith("http://127.0.0.1:")
    answers = {httpx.get(app.public_url, timeout=5).text for _ in range(8)}
    assert len(answers) == 2  # nginx balances over both containers (hostname differs)
    logs = app.logs()
    assert sorted(logs) == sorted(r["workerId"] for r in app.replicas())
    assert all(any('"GET / HTTP/1.1" 200' in line for line in lines) for lines in logs.values())
    assert [r["status"] for r in app.replicas()] == ["running", "running"]

    container = inspect(app.replicas()[0]["workerId"])
    assert container["Config"]["Labels"]["bakery.tag.suite"] == "docker"
    limits = container["HostConfig"]
    assert (limits["NanoCpus"], limits["Memory"], limits["ShmSize"]) == (
        500_000_000,
        256 * 2**20,
        64 * 2**20,
    )

    # an unchanged config is a no-op: same version, same containers
    before = [r["workerId"] for r in app.replicas()]
    again = deployer(hello_build, app_name, [SERVE], **options).deploy(**FAST)
    assert again.deployed_version == app.deployed_version
    assert [r["workerId"] for r in again.replicas()] == before
    assert again.id == app.id

    # a new Python process finds the app, its URL and version
    script = (
        "import json; from deployer import AppDeployer; "
        f"[a] = AppDeployer.list_deployments(name={app_name!r}); "
        "print(json.dumps([a.deployed_version, a.public_url, a.info()['status']['state']]))"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(found.stdout) == [app.deployed_version, app.public_url, "serving"]

    app.delete()
    assert AppDeployer.list_deployments(name=app_name) == []
    assert DockerRuntime().workers(app_name) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(again.public_url or "http://127.0.0.1:9", timeout=2)


def test_api_auth_rejects_requests_without_the_token(hello_build, app_name):
    app = deployer(hello_build, app_name, [SERVE], auth={"type": "API"}).deploy(**FAST)

    assert app.auth_type == "API"
    assert httpx.get(app.public_url, timeout=5).status_code == 401
    wrong = {"Authorization": "Basic YmFrZXJ5Ondyb25n"}
    assert httpx.get(app.public_url, headers=wrong, timeout=5).status_code == 401
    answer = httpx.get(app.public_url, headers=app.auth(), timeout=5)
    assert answer.status_code == 200 and answer.text.startswith("hello from ")


def test_browser_auth_app_has_no_auth_headers(hello_build, app_name):
    app = deployer(hello_build, app_name, [SERVE]).deploy(**FAST)
    with pytest.raises(ValueError, match="auth\\(\\) headers exist only"):
        app.auth()


def test_command_that_exits_at_once_is_a_crash_loop_with_its_logs(hello_build, app_name):
    commands = ["echo starting up", "echo no such module >&2", "exit 3"]
    with pytest.raises(AppCrashLoopException) as caught:
        deployer(hello_build, app_name, commands).deploy(**FAST)

    error = caught.value
    assert error.worker_id.startswith(f"bakery-{app_name}-")
    assert set(error.logs) == {"no such module", "starting up"}
    app = error.deployed_app
    assert app is not None
    # the crash-looping container is stopped, its logs kept: every run's lines are there
    assert [r["status"] for r in app.replicas()] == ["terminated"]
    runs = app.logs(previous=True)[error.worker_id] + app.logs()[error.worker_id]
    assert runs.count("starting up") >= 2  # it crashed, restarted and crashed again


def test_port_that_never_opens_is_a_readiness_failure(hello_build, app_name):
    """The probe reaches the container itself: docker-proxy's open host port does not count."""
    with pytest.raises(AppReadinessException) as caught:
        deployer(hello_build, app_name, ["exec sleep 60"]).deploy(**{**FAST, "max_wait_time": 1.5})

    app = caught.value.deployed_app
    assert app is not None
    assert [r["status"] for r in app.replicas()] == ["running"]
    assert [r["ready"] for r in app.replicas()] == [False]


def test_failed_upgrade_leaves_the_old_version_serving(hello_build, app_name):
    first = deployer(hello_build, app_name, [SERVE]).deploy(**FAST)
    with pytest.raises(AppCrashLoopException):
        deployer(hello_build, app_name, ["exit 1"]).deploy(**FAST)

    assert httpx.get(first.public_url, timeout=5).status_code == 200
    assert AppDeployer.get(app_name).deployed_version == first.deployed_version
    fixed = deployer(hello_build, app_name, [SERVE], environment={"FIXED": "1"}).deploy(**FAST)
    assert fixed.deployed_version != first.deployed_version
    versions = {w.version for w in DockerRuntime().workers(app_name)}
    assert versions == {fixed.deployed_version}  # the failed and the old version are gone
    assert httpx.get(fixed.public_url, timeout=5).status_code == 200


def test_readiness_conditions(hello_build, app_name):
    slow = ["sleep 2", SERVE]
    started = deployer(hello_build, app_name, slow, replicas={"fixed": 2}).deploy(
        readiness_condition="async", **FAST
    )
    assert started.info()["status"]["state"] == "serving"
    assert not all(r["ready"] for r in started.replicas())  # async did not wait

    one = deployer(hello_build, app_name, slow, replicas={"min": 2, "max": 3}).deploy(
        readiness_condition="at_least_one_running", **FAST
    )
    assert sum(r["ready"] for r in one.replicas()) >= 1

    everything = deployer(hello_build, app_name, slow, replicas={"fixed": 3}).deploy(
        readiness_condition="all_running", **FAST
    )
    assert [r["ready"] for r in everything.replicas()] == [True, True, True]

    finished = deployer(hello_build, app_name, [SERVE], replicas={"fixed": 1}).deploy(
        readiness_condition="fully_finished", **FAST
    )
    assert {w.version for w in DockerRuntime().workers(app_name)} == {finished.deployed_version}


def test_concurrent_deploys_of_one_name_raise_the_upgrade_exceptions(hello_build, app_name):
    first_error: list[BaseException] = []

    def slow_deploy() -> None:
        try:
            deployer(hello_build, app_name, ["sleep 8", SERVE]).deploy(**FAST)
        except BaseException as error:
            first_error.append(error)

    thread = threading.Thread(target=slow_deploy)
    thread.start()
    try:
        _wait_for(lambda: DockerRuntime().workers(app_name))
        newer = deployer(hello_build, app_name, [SERVE], environment={"V": "2"})
        with pytest.raises(AppUpgradeInProgressException) as busy:
            newer.deploy(**FAST)
        assert busy.value.upgrader is not None and "pid" in busy.value.upgrader

        forced = deployer(
            hello_build, app_name, [SERVE], environment={"V": "2"}, force_upgrade=True
        ).deploy(**FAST)
    finally:
        thread.join(timeout=120)
    [error] = first_error
    assert isinstance(error, AppConcurrentUpgradeException)
    assert error.actual_version == forced.deployed_version
    assert error.expected_version != forced.deployed_version
    assert httpx.get(forced.public_url, timeout=5).status_code == 200


def test_list_deployments_filters_with_and_semantics(hello_build, app_name):
    other = f"{app_name}-b"
    try:
        deployer(
            hello_build,
            app_name,
            [SERVE],
            project="shop",
            branch="main",
            tags=[{"env": "prod"}, {"team": "ml"}],
        ).deploy(readiness_condition="async", **FAST)
        deployer(
            hello_build, other, [SERVE], project="shop", branch="dev", tags=[{"env": "prod"}]
        ).deploy(readiness_condition="async", **FAST)

        def names(**filters) -> list[str]:
            return sorted(
                a.name
                for a in AppDeployer.list_deployments(**filters)
                if a.name in (app_name, other)
            )

        assert names() == [app_name, other]
        assert names(name=other) == [other]
        assert names(project="shop") == [app_name, other]
        assert names(project="shop", branch="main") == [app_name]
        assert names(tags=[{"env": "prod"}]) == [app_name, other]
        assert names(tags=[{"env": "prod"}, {"team": "ml"}]) == [app_name]
        assert names(tags=[{"env": "staging"}]) == []
        assert names(project="other") == []
        [listed] = AppDeployer.list_deployments(name=app_name)
        assert listed.tags == [{"env": "prod"}, {"team": "ml"}]
    finally:
        for app in AppDeployer.list_deployments(name=other):
            app.delete()


def test_scale_to_zero_keeps_the_app_and_a_redeploy_brings_it_back(hello_build, app_name):
    app = deployer(hello_build, app_name, [SERVE]).deploy(**FAST)
    url = app.public_url

    app.scale_to_zero()

    assert [r["status"] for r in app.replicas()] == ["terminated"]
    assert httpx.get(url, timeout=5).status_code == 503
    assert app.info()["status"]["state"] == "scaled_to_zero"
    assert [a.name for a in AppDeployer.list_deployments(name=app_name)] == [app_name]

    back = deployer(hello_build, app_name, [SERVE]).deploy(**FAST)
    assert back.deployed_version == app.deployed_version
    assert back.public_url == url
    assert httpx.get(url, timeout=5).status_code == 200


def test_secrets_reach_the_replicas_environment(hello_build, app_name):
    SecretStore().put("hello-keys", {"API_KEY": "s3cret"})
    app = deployer(
        hello_build, app_name, ['echo "key=$API_KEY"', SERVE], secrets=["hello-keys"]
    ).deploy(**FAST)

    [lines] = app.logs().values()
    assert "key=s3cret" in lines
    assert "s3cret" not in json.dumps(app.info())  # the record keeps only the name

    # a changed value reaches the replicas on the next deploy, at the same version
    SecretStore().put("hello-keys", {"API_KEY": "rotated"})
    again = deployer(
        hello_build, app_name, ['echo "key=$API_KEY"', SERVE], secrets=["hello-keys"]
    ).deploy(**FAST)
    assert again.deployed_version == app.deployed_version
    [lines] = again.logs().values()
    assert "key=rotated" in lines


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def _delete_all(*names: str) -> None:
    for name in names:
        for app in AppDeployer.list_deployments(name=name):
            app.delete()


def test_depends_on_chain_deploys_dependencies_first_and_passes_their_urls(hello_build, app_name):
    backend, middle = f"{app_name}-a", f"{app_name}-b"
    url_of = {name: url_variable(name) for name in (backend, middle)}
    fetch = (
        "python -c \"import os, urllib.request; print('got', "
        "urllib.request.urlopen(os.environ['{}']).read().decode().strip())\""
    )
    try:
        a = deployer(hello_build, backend, [SERVE])
        b = deployer(hello_build, middle, [fetch.format(url_of[backend]), SERVE], depends_on=[a])
        c = deployer(hello_build, app_name, [fetch.format(url_of[middle]), SERVE], depends_on=[b])

        app = c.deploy(**FAST)

        assert app.name == app_name
        spec = app.info()["spec"]
        assert spec["depends_on"] == [middle]
        assert spec["environment"][url_of[middle]].startswith("http://")
        [lines] = app.logs().values()
        assert any(line.startswith("got hello from ") for line in lines)  # reached b
        [b_app] = AppDeployer.list_deployments(name=middle)
        [b_lines] = b_app.logs().values()
        assert any(line.startswith("got hello from ") for line in b_lines)  # reached a
    finally:
        _delete_all(backend, middle)


def test_depends_on_cycle_is_refused_before_anything_deploys(hello_build, app_name):
    other = f"{app_name}-b"
    a = deployer(hello_build, app_name, [SERVE], depends_on=[other])
    b = deployer(hello_build, other, [SERVE], depends_on=[a])

    with pytest.raises(AppConfigError, match=f"cycle: {app_name} -> {other} -> {app_name}"):
        b.deploy(**FAST)
    assert AppDeployer.list_deployments(name=app_name) == []
    assert AppDeployer.list_deployments(name=other) == []


def test_lifecycle_helper_cleans_up_after_an_exception(hello_build, app_name):
    kept = f"{app_name}-kept"

    @app_deploy(cleanup_policy="scale_down")
    def flow() -> None:
        deployer(hello_build, app_name, [SERVE]).deploy(**FAST)
        raise RuntimeError("the flow failed after deploying")

    try:
        with pytest.raises(RuntimeError, match="flow failed"):
            flow()
        [scaled] = AppDeployer.list_deployments(name=app_name)
        assert scaled.info()["status"]["state"] == "scaled_to_zero"
        [run_tag] = [t for t in scaled.tags if RUN_TAG in t]

        with (
            pytest.raises(RuntimeError, match="second run"),
            app_deploy(cleanup_policy="delete") as run,
        ):
            deployer(hello_build, kept, [SERVE]).deploy(**FAST)
            assert [a.name for a in run.list()] == [kept]
            raise RuntimeError("second run")
        assert AppDeployer.list_deployments(name=kept) == []
        assert AppDeployer.list_deployments(tags=[run_tag])[0].name == app_name
    finally:
        _delete_all(kept)


def test_unreachable_engine_is_a_backend_error(hello_build, app_name, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(BackendUnhealthyException, match="no Docker Engine answers"):
        deployer(hello_build, app_name, [SERVE]).deploy(**FAST)
    assert AppDeployer.list_deployments(name=app_name) == []  # nothing registered
