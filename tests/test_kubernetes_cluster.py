"""The requests `KubernetesApplier` sends, through the real client, to a local HTTP stub.

The stub answers discovery and canned objects; it checks request shapes (paths, query
parameters, content types, bodies) and the mapping of HTTP errors, not what a cluster does
with them. No API server runs on these machines; see the README's live-cluster section.
"""

import json
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deployer.runtimes.kubernetes import (
    KubernetesApplier,
    KubernetesAppSpec,
    KubernetesRejected,
    KubernetesUnavailable,
    LogRequest,
    app_ref,
    apply_plan,
    render,
)

VERSION = {
    "buildDate": "2024-08-13T07:28:49Z",
    "compiler": "gc",
    "gitCommit": "9edcffcde5595e8a5b1a35f88c421764e575afce",
    "gitTreeState": "clean",
    "gitVersion": "v1.31.0",
    "goVersion": "go1.22.5",
    "major": "1",
    "minor": "31",
    "platform": "linux/amd64",
}


def resource(name: str, kind: str, verbs: list[str]) -> dict[str, Any]:
    return {"kind": kind, "name": name, "namespaced": True, "singularName": "", "verbs": verbs}


DISCOVERY: dict[str, Any] = {
    "/version": VERSION,
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            resource("pods", "Pod", ["get", "list"]),
            resource("pods/log", "Pod", ["get"]),
            resource("services", "Service", ["get", "patch", "delete"]),
        ],
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [
            resource("deployments", "Deployment", ["get", "patch", "delete"]),
            resource("deployments/scale", "Scale", ["get", "patch"]),
        ],
    },
}
NS = "/api/v1/namespaces/apps"
DEPLOYMENT = "/apis/apps/v1/namespaces/apps/deployments/web"


class Stub(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[tuple[str, str, str | None, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Stub

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?")[0].rstrip("/") or "/"
        if path in DISCOVERY:
            status, answer = 200, DISCOVERY[path]
        else:
            self.server.requests.append(
                (self.command, self.path, self.headers.get("Content-Type"), body)
            )
            status, answer = self.server.routes.get((self.command, path), (404, None))
        if answer is None:
            answer = {"kind": "Status", "apiVersion": "v1", "code": status, "reason": "NotFound"}
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(answer, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the discovery cache file
    server = Stub()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def applier(stub: Stub) -> KubernetesApplier:
    return KubernetesApplier(client.ApiClient(client.Configuration(host=stub.url)), timeout=5)


def test_apply_is_a_forced_server_side_apply_per_object(stub: Stub) -> None:
    spec = KubernetesAppSpec(name="web", version="v1", image="img:1", port=8000, namespace="apps")
    manifests = render(spec, keda_installed=False, ingress_class=None)
    stub.routes[("PATCH", DEPLOYMENT)] = (200, manifests[0])
    stub.routes[("PATCH", f"{NS}/services/web")] = (200, manifests[1])
    applier(stub).apply(apply_plan(manifests))
    assert stub.requests == [
        (
            "PATCH",
            f"{DEPLOYMENT}?fieldManager=bakery&force=true",
            "application/apply-patch+yaml",
            manifests[0],
        ),
        (
            "PATCH",
            f"{NS}/services/web?fieldManager=bakery&force=true",
            "application/apply-patch+yaml",
            manifests[1],
        ),
    ]


def test_get_and_delete_treat_missing_objects_and_kinds_as_absent(stub: Stub) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    stub.routes[("GET", DEPLOYMENT)] = (200, deployment)
    cluster = applier(stub)
    assert cluster.get(app_ref("Deployment", "web", "apps")) == deployment
    assert cluster.get(app_ref("Service", "web", "apps")) is None  # 404
    assert cluster.get(app_ref("ScaledObject", "web", "apps")) is None  # kind not served
    cluster.delete([app_ref("Service", "web", "apps"), app_ref("Ingress", "web", "apps")])
    assert [r[:2] for r in stub.requests] == [
        ("GET", DEPLOYMENT),
        ("GET", f"{NS}/services/web"),
        ("DELETE", f"{NS}/services/web"),
    ]


def test_scale_patches_the_scale_subresource(stub: Stub) -> None:
    stub.routes[("PATCH", f"{DEPLOYMENT}/scale")] = (200, {"kind": "Scale", "apiVersion": "v1"})
    applier(stub).scale(app_ref("Deployment", "web", "apps"), 0)
    assert stub.requests == [
        (
            "PATCH",
            f"{DEPLOYMENT}/scale?fieldManager=bakery",
            "application/merge-patch+json",
            {"spec": {"replicas": 0}},
        )
    ]


def test_pods_are_listed_by_label_selector(stub: Stub) -> None:
    pod = {"metadata": {"name": "web-1"}}
    stub.routes[("GET", f"{NS}/pods")] = (
        200,
        {"kind": "PodList", "apiVersion": "v1", "items": [pod]},
    )
    found = applier(stub).pods(
        "apps", {"app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "bakery"}
    )
    assert found == [{**pod, "apiVersion": "v1", "kind": "Pod"}]
    assert stub.requests[0][1] == (
        f"{NS}/pods?labelSelector="
        "app.kubernetes.io/managed-by%3Dbakery%2Capp.kubernetes.io/name%3Dweb"
    )


def test_pod_logs_and_the_errors_that_mean_no_log(stub: Stub) -> None:
    request = LogRequest("web-1", "apps", "app", previous=True)
    log = f"{NS}/pods/web-1/log"
    stub.routes[("GET", log)] = (200, "2025-06-02T09:14:09Z hello\n")
    cluster = applier(stub)
    assert cluster.pod_log(request) == "2025-06-02T09:14:09Z hello\n"
    assert stub.requests[0][1] == f"{log}?container=app&previous=true&timestamps=true"
    stub.routes[("GET", log)] = (400, None)  # no previous container
    assert cluster.pod_log(request) == ""
    stub.routes[("GET", log)] = (403, None)
    with pytest.raises(KubernetesRejected) as rejected:
        cluster.pod_log(request)
    assert rejected.value.status_code == 403
    stub.routes[("GET", log)] = (503, None)
    with pytest.raises(KubernetesUnavailable, match="503"):
        cluster.pod_log(request)
