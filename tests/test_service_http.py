"""The server's HTTP side against real servers on loopback: health and readiness, Prometheus
metrics, the status page (rendered by headless Chromium), and Fast Bakery's bake call, with
the real registry and real PyPI wheels.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bakery.bake import bake_image
from bakery.oci.read import open_image
from frontends.service import fastbakery
from frontends.service.server import RunningServer, ServerSettings, start
from packager import package_code
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from tests.fixtures.services import free_port, wait_until
from tests.test_service_bake import slots_taken, watchers

BAKERY = str(Path(sys.executable).parent / "bakery")
METAFLOW_HEADERS = {"Content-Type": "application/json", "Connection": "keep-alive"}
"""What Metaflow's FastBakery client sends besides its service headers (`x-api-key`)."""


def serve(tmp_path: Path, **settings) -> RunningServer:
    return start(ServerSettings(port=0, http_port=0, state_dir=tmp_path / "state", **settings))


@pytest.fixture
def running(server_repo, tmp_path):
    """A server with both sides, publishing to the test registry."""
    server = serve(tmp_path)
    try:
        yield server
    finally:
        server.stop(grace=1)


def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=600)


def bakes_by_outcome(server: RunningServer) -> dict[str, float]:
    """`bakery_bakes_total` by outcome, as Prometheus scrapes it from /metrics."""
    with http(server) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(answer.text)
        if family.name == "bakery_bakes"
        for sample in family.samples
        if sample.name == "bakery_bakes_total"
    }


def metric(server: RunningServer, name: str) -> float:
    with http(server) as client:
        text = client.get("/metrics").text
    (value,) = (
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )
    return value


def spec_tags(registry, repo: str) -> list[str]:
    return [tag for tag in registry.tags(repo) if tag.startswith("spec-")]


# -- health, readiness, shutdown ---------------------------------------------------------


def test_readyz_turns_503_when_shutdown_begins_while_healthz_stays_up(server_repo, tmp_path):
    server = serve(tmp_path)
    service = server.service
    service.orphan_grace = 0  # a caller that leaves cancels its queued bake at once
    client = http(server)
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").status_code == 200

    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stopping = threading.Thread(target=server.stop, kwargs={"grace": 600})
    with slots_taken(service):
        call = bakery_pb2_grpc.BakeryStub(channel).Bake(
            bakery_pb2.BakeRequest(pypi={"six": ""}), timeout=600
        )
        assert next(call).HasField("accepted")
        stopping.start()  # waits for the queued bake: its gRPC call and its build
        wait_until(lambda: client.get("/readyz").status_code == 503, "readyz to turn 503")
        assert client.get("/readyz").json() == {
            "ready": False,
            "reason": "the server is shutting down",
        }
        assert client.get("/healthz").status_code == 200  # draining, not dead
        refused = client.post("/api/v1/bake", json={"pipRequirements": ["six"]})
        assert refused.status_code == 503
        assert refused.json()["error"]["details"]["kind"] == "unavailable"
        call.cancel()  # the last caller goes: the build is cancelled, the stop completes
        stopping.join(120)
    assert not stopping.is_alive()
    client.close()
    channel.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.http_port}/healthz", timeout=5)


def test_bakery_serve_http_port_serves_until_sigterm(tmp_path):
    port, http_port = free_port(), free_port()
    env = {**os.environ, "BAKERY_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "serve.log"
    command = [BAKERY, "serve", "--port", str(port), "--http-port", str(http_port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{http_port}"
        wait_until(lambda: _answers(f"{url}/healthz"), "bakery serve's /healthz")
        assert httpx.get(f"{url}/readyz").json() == {"ready": True}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert f"HTTP on http://127.0.0.1:{http_port}/" in log.read_text()

    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = busy.getsockname()[1]
        refused = subprocess.run(
            [BAKERY, "serve", "--port", str(free_port()), "--http-port", str(taken)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken} for HTTP" in refused.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# -- metrics ------------------------------------------------------------------------------


def test_fifty_concurrent_remote_bakes_are_one_build_in_metrics(running, server_repo, registry):
    url, service = f"grpc://127.0.0.1:{running.port}", running.service
    assert bakes_by_outcome(running) == {"built": 0, "hit": 0, "joined": 0, "failed": 0}
    results: list = []

    def one() -> None:
        results.append(bake_image(pypi={"six": "", "idna": ""}, service=url))

    threads = [threading.Thread(target=one) for _ in range(50)]
    with slots_taken(service):  # all fifty are attached before the build may start
        for thread in threads:
            thread.start()
        wait_until(lambda: watchers(service) == [50], "fifty callers on one build")
        assert metric(running, "bakery_builds_queued") == 1
    for thread in threads:
        thread.join()

    assert len(results) == 50 and len(set(results)) == 1
    assert bakes_by_outcome(running) == {"built": 1, "hit": 0, "joined": 49, "failed": 0}
    assert service.builds_started == 1
    (entry,) = running.index.entries()
    assert spec_tags(registry, server_repo[1]) == [f"spec-{entry.spec_id}"]
    assert metric(running, "bakery_bake_uploaded_bytes_total") > 0
    assert metric(running, "bakery_builds_queued") == 0
    assert metric(running, "bakery_builds_in_flight") == 0
    with http(running) as client:
        stages = {
            sample.labels["stage"]
            for family in text_string_to_metric_families(client.get("/metrics").text)
            if family.name == "bakery_bake_stage_duration_seconds"
            for sample in family.samples
            if sample.name.endswith("_count") and sample.value == 1
        }
    assert {"resolve", "layers", "publish"} <= stages


def test_package_bytes_received_are_counted_per_server(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CODE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "client-cache"))
    monkeypatch.delenv("BAKERY_URL", raising=False)
    monkeypatch.delenv("BAKERY_TOKEN", raising=False)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.py").write_text("print('hello')\n")
    (tree / "data.txt").write_bytes(b"x" * 3000)
    first, second = serve(tmp_path / "one"), serve(tmp_path / "two")
    try:
        package_code(
            [str(tree)], suffixes=[".py", ".txt"], service=f"grpc://127.0.0.1:{first.port}"
        )
        sent = len("print('hello')\n") + 3000
        assert metric(first, "bakery_package_received_bytes_total") == sent
        assert metric(second, "bakery_package_received_bytes_total") == 0
    finally:
        first.stop(grace=0)
        second.stop(grace=0)


# -- the status page ----------------------------------------------------------------------


def chromium_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium renders it."""
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed (apt-get install chromium; .ci/run does)"
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_status_page_shows_finished_and_queued_bakes_in_chromium(running, tmp_path):
    from html.parser import HTMLParser

    url = f"grpc://127.0.0.1:{running.port}"
    baked = bake_image(pypi={"six": ""}, service=url)
    service = running.service
    service.orphan_grace = 0
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    with slots_taken(service):
        call = bakery_pb2_grpc.BakeryStub(channel).Bake(
            bakery_pb2.BakeRequest(pypi={"attrs": ">=20"}), timeout=600
        )
        assert next(call).HasField("accepted")
        wait_until(lambda: watchers(service) == [1], "a queued bake")
        dom = chromium_dom(f"http://127.0.0.1:{running.http_port}/", tmp_path / "profile")
        call.cancel()
    channel.close()

    class Tables(HTMLParser):
        """The text of each table's rows, by table id; and the summary line."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, list[list[str]]] = {}
            self.table = self.summary = ""
            self.in_summary = False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "table":
                self.table = attrs.get("id", "")
                self.rows[self.table] = []
            elif tag == "tr" and self.table:
                self.rows[self.table].append([])
            elif tag == "td" and self.table:
                self.rows[self.table][-1].append("")
            self.in_summary = attrs.get("id") == "summary"

        def handle_endtag(self, tag):
            if tag == "table":
                self.table = ""

        def handle_data(self, data):
            if self.in_summary:
                self.summary += data
            elif self.table and self.rows[self.table] and self.rows[self.table][-1]:
                self.rows[self.table][-1][-1] += data

    page = Tables()
    page.feed(dom)
    recent = [[cell.strip() for cell in row] for row in page.rows["recent"] if row]
    assert recent[0][0] == "built"
    assert recent[0][1] == "six"
    assert baked.image in recent[0][2]
    (entry,) = running.index.entries()
    assert f"spec {entry.spec_id}" in recent[0][2]
    active = [[cell.strip() for cell in row] for row in page.rows["active"] if row]
    assert active == [["queued", "attrs>=20", "position 1", "1"]]
    assert page.summary.startswith("0 running, 1 queued (2 build slots); cache: 1 images, ")


# -- Fast Bakery ---------------------------------------------------------------------------


def metaflow_request(**fields) -> dict:
    """A bake request as Metaflow's FastBakery client builds it (pypi only, no conda)."""
    request = {
        "perimeterName": "default",
        "pythonVersion": None,
        "pipRequirements": ["six==1.17.0", "idna>=3"],
        "condaMatchspecs": [],
        "baseImage": {"imageReference": None},
        "imageKind": "oci-zstd",
    }
    return {**request, **fields}


def test_a_fast_bakery_request_sent_twice_is_one_build(running, server_repo, registry):
    service = running.service
    body = metaflow_request()
    answers: list[httpx.Response] = []

    def post() -> None:
        with http(running) as client:
            answers.append(client.post("/api/v1/bake", json=body, headers=METAFLOW_HEADERS))

    with slots_taken(service):  # the client's two sends overlap: the second joins the first
        senders = [threading.Thread(target=post) for _ in range(2)]
        for sender in senders:
            sender.start()
        wait_until(lambda: watchers(service) == [2], "both sends on one build")
    for sender in senders:
        sender.join()
    with http(running) as client:  # and once more after the answer came: a hit
        answers.append(client.post("/api/v1/bake", json=body, headers=METAFLOW_HEADERS))

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    bodies = [answer.json() for answer in answers]
    assert bodies[0] == bodies[1]  # the build's answer, twice
    success, hit = bodies[0]["success"], bodies[2]["success"]
    image = success["containerImage"]
    assert image.startswith(f"{server_repo[0]}@sha256:")
    assert success["pythonPath"] == "/opt/bakery/env/bin/python"
    solver = success["bakingStats"]["solverStats"]
    assert solver["packagesInSolvedEnvironment"] == 2
    assert isinstance(solver["durationMs"], int) and solver["durationMs"] >= 0
    assert (hit["containerImage"], hit["pythonPath"]) == (image, success["pythonPath"])
    assert hit["bakingStats"]["solverStats"] == {  # a hit solves nothing
        "durationMs": 0,
        "packagesInSolvedEnvironment": 2,
    }
    assert bakes_by_outcome(running) == {"built": 1, "hit": 1, "joined": 1, "failed": 0}
    assert len(spec_tags(registry, server_repo[1])) == 1
    with open_image(image) as baked:  # imageKind oci-zstd: the packages' layers are zstd
        layers = baked.manifest(None).json["layers"]
    assert "application/vnd.oci.image.layer.v1.tar+zstd" in {layer["mediaType"] for layer in layers}


def test_a_fast_bakery_client_that_hangs_up_cancels_the_bake_nobody_waits_for(
    running, server_repo, registry
):
    service = running.service
    service.orphan_grace = 0  # no wait for a re-attach: HTTP callers cannot re-attach anyway
    with slots_taken(service), http(running) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(
                "/api/v1/bake",
                json=metaflow_request(pipRequirements=["attrs"]),
                timeout=httpx.Timeout(60, read=2),  # gives up while the bake is queued
            )
        (build,) = service.known_builds()
        wait_until(lambda: build.done, "the bake of a departed caller to stop")
    assert build.events[-1].error.kind == bakery_pb2.ERROR_KIND_CANCELLED
    assert "callers went away" in build.events[-1].error.message
    assert spec_tags(registry, server_repo[1]) == []
    assert bakes_by_outcome(running)["failed"] == 1


def test_a_failed_fast_bakery_bake_answers_failure_with_its_kind_status(running):
    with http(running) as client:
        missing = client.post(
            "/api/v1/bake",
            json=metaflow_request(pipRequirements=["bakery-no-such-package-xyzzy==1.0"]),
        )
    assert missing.status_code == 422, missing.text
    failure = missing.json()["failure"]
    assert failure["kind"] == "invalid_input"
    assert "bakery-no-such-package-xyzzy" in failure["message"]
    assert bakes_by_outcome(running)["failed"] == 1


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "Invalid JSON"),
        (b"[]", 400, "not a Fast Bakery bake request"),
        (json.dumps({"pipRequirements": "six"}).encode(), 400, "pipRequirements"),
        (json.dumps({"imageKind": "docker-v2"}).encode(), 400, "imageKind"),
        (json.dumps({"pipRequirements": ["six", "-r /etc/passwd"]}).encode(), 400, "pip option"),
        (json.dumps({"pipRequirements": ["six\n--index-url http://x"]}).encode(), 400, "U+000A"),
        (
            json.dumps({"pipRequirements": ["six==not a version"]}).encode(),
            400,
            "pipRequirements[0]",
        ),
        (
            json.dumps(
                {
                    "pipRequirements": ["six"],
                    "platforms": [
                        {"os": "linux", "architecture": "amd64"},
                        {"os": "linux", "architecture": "arm64"},
                    ],
                }
            ).encode(),
            400,
            "one request per platform",
        ),
        (
            json.dumps(
                {
                    "pipRequirements": ["six"],
                    "platforms": [{"os": "linux", "architecture": "s390x"}],
                }
            ).encode(),
            400,
            "linux/s390x",
        ),
        (json.dumps({"pipRequirements": ["six"], "pythonVersion": "2.7"}).encode(), 400, "2.7"),
        (b"x" * (fastbakery.MAX_BODY_BYTES + 1), 413, "larger than"),
    ],
)
def test_bad_fast_bakery_input_gets_the_error_shape_and_status(tmp_path, body, status, says):
    server = serve(tmp_path)
    try:
        with http(server) as client:
            answer = client.post("/api/v1/bake", content=body, headers=METAFLOW_HEADERS)
        assert answer.status_code == status
        error = answer.json()["error"]
        assert error["statusCode"] == status
        assert error["details"]["kind"] == "invalid_input"
        assert says in error["details"]["message"]
        assert server.service.builds_started == 0
    finally:
        server.stop(grace=0)


def test_a_bad_x_api_key_is_401_and_nothing_is_built(tmp_path):
    server = serve(tmp_path)
    try:
        secret = server.index.create_token("ci", "bake")
        body = metaflow_request(pipRequirements=["six"])
        with http(server) as client:
            without = client.post("/api/v1/bake", json=body)
            wrong = client.post("/api/v1/bake", json=body, headers={"x-api-key": "bkr_wrong"})
            # with the right key the request gets past auth (to be refused as bad input here)
            allowed = client.post(
                "/api/v1/bake", json={"imageKind": "none"}, headers={"x-api-key": secret}
            )
            wrong_method = client.get("/api/v1/bake")
        for answer in (without, wrong):
            assert answer.status_code == 401
            assert answer.json()["error"]["statusCode"] == 401
        assert "x-api-key" in without.json()["error"]["details"]["message"]
        assert wrong.json()["error"]["details"]["message"] == (
            "the x-api-key is not a token of this server"
        )
        assert allowed.status_code == 400
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["statusCode"] == 405
        assert server.service.builds_started == 0
        assert bakes_by_outcome(server) == {"built": 0, "hit": 0, "joined": 0, "failed": 0}
    finally:
        server.stop(grace=0)


def test_fast_bakery_fields_map_onto_a_bake_request():
    """Every field the server reads, and the ones it ignores (same fingerprint: same build)."""
    from bakery import wire

    full = fastbakery.parse(
        json.dumps(
            {
                "perimeterName": "prod",
                "pythonVersion": "3.12",
                "pipRequirements": ["flask>=2", "requests[socks]; python_version >= '3.8'"],
                "condaMatchspecs": [],
                "condaChannels": ["conda-forge"],
                "defaultCondaChannel": "conda-forge",
                "baseImage": {"imageReference": "registry.example/base:1"},
                "platforms": [{"os": "linux", "architecture": "arm64"}],
                "imageKind": "oci-gzip",
                "cacheBehavior": {
                    "responseMaxAgeSeconds": 3600,
                    "layerMaxAgeSeconds": 0,
                    "baseImageMaxAgeSeconds": 0,
                    "overwriteExistingLayers": True,
                },
                "extraConfigs": {"anything": "goes"},
                "aFieldFromTheFuture": 1,
            }
        ).encode()
    )
    message = fastbakery.bake_message(full)
    assert message.requirements.content == ("flask>=2\nrequests[socks]; python_version >= '3.8'\n")
    assert (message.python, message.base_image, message.platform) == (
        "3.12",
        "registry.example/base:1",
        "linux/arm64",
    )
    assert message.compression == bakery_pb2.COMPRESSION_GZIP
    assert message.max_age_seconds == 3600
    assert not message.force  # overwriteExistingLayers: layers are content-addressed

    minimal = fastbakery.bake_message(
        fastbakery.parse(
            json.dumps(
                {
                    "pythonVersion": "3.12",
                    "pipRequirements": ["flask>=2", "requests[socks]; python_version >= '3.8'"],
                    "baseImage": {"imageReference": "registry.example/base:1"},
                    "platforms": [{"os": "linux", "architecture": "arm64"}],
                    "imageKind": "oci-gzip",
                    "cacheBehavior": {"responseMaxAgeSeconds": 3600},
                }
            ).encode()
        )
    )
    assert wire.fingerprint(minimal) == wire.fingerprint(message)
    default = fastbakery.bake_message(fastbakery.parse(b"{}"))
    assert default.compression == bakery_pb2.COMPRESSION_ZSTD  # Fast Bakery's default kind
    assert (default.python, default.base_image, default.platform) == ("", "", "")
