"""KubernetesRuntime's decisions, on recorded pod JSON and an in-memory stand-in for the calls.

`MemoryCluster` replaces `KubernetesApplier` (the only code that talks to an API server) by
a dict of objects and a log of calls: these tests show what the runtime asks a cluster to
do and how it reads the answers. They are not evidence that a cluster does it; see the
README's "what was and was not run against a live cluster".
"""

import copy
import inspect
import json
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deployer.exceptions import (
    AppConfigError,
    AppCreationFailedException,
    AppNotFoundException,
    BackendUnhealthyException,
)
from deployer.host.auth import new_token
from deployer.model.config import AppConfig
from deployer.orchestration.deploy import version_of
from deployer.orchestration.plan import deploy_plan
from deployer.orchestration.records import AppRecord, RecordStore
from deployer.runtimes.base import Runtime
from deployer.runtimes.kubernetes import (
    ApplyRequest,
    ClusterSettings,
    KubernetesApplier,
    KubernetesRejected,
    KubernetesRuntime,
    KubernetesUnavailable,
    LogRequest,
    ResourceRef,
    RuntimeSettings,
    app_ref,
    apply_plan,
    log_lines,
    render,
    stops_deployment,
    to_kubernetes_spec,
    workers,
)
from deployer.runtimes.kubernetes.labels import VERSION_LABEL
from packager import PackagedCode

DATA = Path(__file__).parent / "data" / "kubernetes"
KEY = "5c1e0b2a9d8f7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817061234"
PKG = PackagedCode(f"s3://bakery-code/packages/5c/{KEY}.tar.gz", KEY)
SETTINGS = RuntimeSettings(
    cluster=ClusterSettings(
        domain="apps.example.com",
        namespace="apps",
        browser_auth_url="https://login.example.com/oauth2/auth",
        browser_auth_signin="https://login.example.com/oauth2/start",
    ),
    ingress_class="nginx",
    keda_installed=True,
)
NO_LOGIN = ClusterSettings(domain="apps.example.com", namespace="apps")


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"pod-{name}.json").read_text())


def config(**overrides: Any) -> AppConfig:
    base = {
        "name": "web",
        "port": 8000,
        "image": "registry.example.com/web:1",
        "commands": ["python server.py"],
        "code_package": PKG,
    }
    return AppConfig.from_kwargs(**{**base, **overrides})


class MemoryCluster(KubernetesApplier):
    """Objects by reference, canned pods and logs, and every call in order. Not a cluster."""

    def __init__(
        self, pods: Iterable[dict[str, Any]] = (), logs: Mapping[tuple, str] | None = None
    ) -> None:
        self.objects: dict[ResourceRef, dict[str, Any]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.pod_items = list(pods)
        self.log_texts = dict(logs or {})
        self.failure: Exception | None = None

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.failure is not None:
            raise self.failure

    def ping(self) -> None:
        self._record("ping")

    def apply(self, plan: Iterable[ApplyRequest]) -> None:
        """Like server-side apply, fields the body does not set (a scaled replica count) stay."""
        for request in plan:
            self._record("apply", request.ref)
            self.objects[request.ref] = _merged(self.objects.get(request.ref, {}), request.body)

    def delete(self, refs: Iterable[ResourceRef]) -> None:
        for ref in refs:
            self._record("delete", ref)
            self.objects.pop(ref, None)

    def get(self, ref: ResourceRef) -> dict[str, Any] | None:
        self._record("get", ref)
        return copy.deepcopy(self.objects.get(ref))

    def scale(self, ref: ResourceRef, replicas: int) -> None:
        self._record("scale", ref, replicas)
        self.objects[ref]["spec"]["replicas"] = replicas

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        self._record("pods", namespace, dict(labels))
        return [
            pod
            for pod in self.pod_items
            if pod["metadata"]["namespace"] == namespace
            and labels.items() <= pod["metadata"]["labels"].items()
        ]

    def pod_log(self, request: LogRequest) -> str:
        self._record("log", request)
        return self.log_texts.get((request.name, request.container, request.previous), "")

    def kinds(self, verb: str) -> list[str]:
        return [call[1].kind for call in self.calls if call[0] == verb]


def _merged(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(old))
    for key, value in new.items():
        both = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = _merged(merged[key], value) if both else copy.deepcopy(value)
    return merged


@pytest.fixture
def records(tmp_path: Path) -> RecordStore:
    store = RecordStore("kubernetes", tmp_path)
    app = AppRecord.new("web", "kubernetes")
    app.api_token = new_token()
    store.put(app)
    return store


def runtime_on(
    cluster: MemoryCluster, records: RecordStore, settings: RuntimeSettings = SETTINGS
) -> KubernetesRuntime:
    return KubernetesRuntime(settings, records=records, connect=lambda: cluster)


DEPLOYMENT = app_ref("Deployment", "web", "apps")
INGRESS = app_ref("Ingress", "web", "apps")


# --- the interface ------------------------------------------------------------------------


def test_every_runtime_method_has_the_protocol_signature() -> None:
    methods = [name for name in vars(Runtime) if not name.startswith("_") and name != "kind"]
    assert len(methods) == 11
    for name in methods:
        expected = inspect.signature(getattr(Runtime, name))
        assert inspect.signature(getattr(KubernetesRuntime, name)) == expected, name
    assert KubernetesRuntime.kind == "kubernetes"


def test_building_the_runtime_does_not_connect(records: RecordStore) -> None:
    def refuse() -> KubernetesApplier:
        raise AssertionError("connected")

    KubernetesRuntime(SETTINGS, records=records, connect=refuse)


# --- start ----------------------------------------------------------------------------------


def test_start_applies_the_mapped_spec_then_prunes(records: RecordStore) -> None:
    cluster = MemoryCluster()
    app = config(auth={"type": "API"})
    runtime_on(cluster, records).start(app, "v1")
    record = records.get("web")
    assert record is not None
    spec = to_kubernetes_spec(app, "v1", record, SETTINGS.cluster)
    manifests = render(spec, keda_installed=True, ingress_class="nginx", cluster=SETTINGS.cluster)
    assert [call[1] for call in cluster.calls if call[0] == "apply"] == [
        request.ref for request in apply_plan(manifests)
    ]
    assert list(cluster.objects.values()) == manifests
    assert [m["kind"] for m in manifests] == ["Secret", "Deployment", "Service", "Ingress"]
    assert cluster.kinds("delete") == ["HorizontalPodAutoscaler", "ScaledObject"]


def test_a_new_version_prunes_what_it_no_longer_has(records: RecordStore) -> None:
    cluster = MemoryCluster()
    runtime = runtime_on(cluster, records)
    runtime.start(config(auth={"type": "API"}, replicas={"min": 1, "max": 3}), "v1")
    assert {ref.kind for ref in cluster.objects} >= {"Secret", "ScaledObject"}
    runtime.start(config(replicas={"fixed": 2}), "v2")
    assert sorted(ref.kind for ref in cluster.objects) == ["Deployment", "Ingress", "Service"]
    assert all(
        o["metadata"]["labels"]["bakery.dev/version"] == "v2" for o in cluster.objects.values()
    )
    assert cluster.objects[DEPLOYMENT]["spec"]["replicas"] == 2


def test_start_scales_a_stopped_autoscaled_app_back_to_its_minimum(records: RecordStore) -> None:
    cluster = MemoryCluster()
    runtime = runtime_on(cluster, records)
    app = config(replicas={"min": 2, "max": 4})
    runtime.start(app, "v1")
    cluster.objects[DEPLOYMENT]["spec"]["replicas"] = 0  # as `stop` leaves it
    cluster.calls.clear()
    runtime.start(app, "v1")
    assert ("scale", DEPLOYMENT, 2) in cluster.calls


def test_start_refuses_before_touching_the_cluster(records: RecordStore) -> None:
    cluster = MemoryCluster()
    runtime = runtime_on(cluster, records)
    with pytest.raises(AppConfigError, match="compute_pools"):
        runtime.start(config(compute_pools=["gpu"]), "v1")
    no_login = RuntimeSettings(NO_LOGIN, ingress_class="nginx", keda_installed=True)
    with pytest.raises(AppConfigError, match="no browser login"):
        runtime_on(cluster, records, no_login).start(config(), "v1")  # Browser, public
    with pytest.raises(AppConfigError, match="no browser login"):
        runtime_on(cluster, records, no_login).start(config(auth={"type": "BrowserAndApi"}), "v1")
    with pytest.raises(AppConfigError, match="requests per minute"):
        runtime.start(config(auth={"public": False}, replicas={"min": 0, "max": 2}), "v1")
    assert cluster.calls == []


@pytest.mark.parametrize("auth_type", ["Browser", "API", "BrowserAndApi"])
def test_a_non_public_app_has_no_ingress_and_no_token_secret(
    records: RecordStore, auth_type: str
) -> None:
    """Reachable in the cluster only, without auth; no browser login is needed for it."""
    cluster = MemoryCluster()
    no_login = RuntimeSettings(NO_LOGIN, ingress_class="nginx", keda_installed=True)
    runtime_on(cluster, records, no_login).start(
        config(auth={"type": auth_type, "public": False}), "v1"
    )
    assert sorted(ref.kind for ref in cluster.objects) == ["Deployment", "Service"]
    record = records.get("web")
    assert record is not None
    assert runtime_on(cluster, records, no_login).public_url(record) is None


def test_making_an_app_private_prunes_its_ingress_and_token_secret(records: RecordStore) -> None:
    cluster = MemoryCluster()
    runtime = runtime_on(cluster, records)
    record = records.get("web")
    assert record is not None
    runtime.start(config(auth={"type": "API"}), "v1")
    assert sorted(ref.kind for ref in cluster.objects) == [
        "Deployment",
        "Ingress",
        "Secret",
        "Service",
    ]
    assert runtime.public_url(record) == "http://web.apps.apps.example.com/"
    runtime.start(config(auth={"type": "API", "public": False}), "v2")
    assert sorted(ref.kind for ref in cluster.objects) == ["Deployment", "Service"]
    assert {"Secret", "Ingress"} <= set(cluster.kinds("delete"))
    assert runtime.public_url(record) is None


def test_rpm_autoscaling_needs_keda(records: RecordStore) -> None:
    without_keda = RuntimeSettings(SETTINGS.cluster, ingress_class="nginx")
    runtime = runtime_on(MemoryCluster(), records, without_keda)
    runtime.refuse_unsupported(config(replicas={"fixed": 2}))
    with pytest.raises(AppConfigError, match="needs KEDA") as caught:
        runtime.refuse_unsupported(config(replicas={"min": 1, "max": 3}, persistence="pg"))
    assert [p.split(":")[0] for p in caught.value.problems] == ["persistence", "replicas"]
    private = config(replicas={"min": 1, "max": 3}, auth={"public": False})
    with pytest.raises(AppConfigError) as caught:
        runtime.refuse_unsupported(private)
    no_ingress, no_keda = caught.value.problems
    assert "auth.public=False has none" in no_ingress
    assert "needs KEDA" in no_keda
    with pytest.raises(AppConfigError, match=r"auth\.public=False has none"):
        runtime_on(MemoryCluster(), records).refuse_unsupported(private)  # KEDA is no help


def test_start_needs_the_apps_record(tmp_path: Path) -> None:
    runtime = runtime_on(MemoryCluster(), RecordStore("kubernetes", tmp_path))
    with pytest.raises(AppNotFoundException):
        runtime.start(config(), "v1")


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (KubernetesRejected(403, "forbidden"), AppCreationFailedException),
        (KubernetesUnavailable("the API server failed (503)"), BackendUnhealthyException),
    ],
)
def test_cluster_errors_become_deployer_errors(
    records: RecordStore, failure: Exception, raised: type[Exception]
) -> None:
    cluster = MemoryCluster()
    cluster.failure = failure
    runtime = runtime_on(cluster, records)
    with pytest.raises(raised):
        runtime.start(config(), "v1")
    with pytest.raises(BackendUnhealthyException):  # reading is never a creation failure
        runtime.workers("web")


# --- workers and logs -----------------------------------------------------------------------


def test_workers_are_the_apps_pods_oldest_first_with_their_addresses(records: RecordStore) -> None:
    ready, creating, old = load("running-ready"), load("container-creating"), load("terminating")
    ready["metadata"]["creationTimestamp"] = "2025-06-02T09:15:00Z"
    stranger = copy.deepcopy(ready)
    stranger["metadata"]["labels"]["app.kubernetes.io/name"] = "other"
    cluster = MemoryCluster([ready, creating, old, stranger])
    found = runtime_on(cluster, records).workers("web")
    assert [(w.worker_id, w.version, w.status.phase) for w in found] == [
        ("web-58d4f7c9b-a8j2m", "v1", "terminated"),
        ("web-6c9f8d7b5-c7x3r", "v2", "pending"),
        ("web-6c9f8d7b5-x2k4q", "v2", "running"),
    ]
    assert [w.internal_url for w in found] == [None, None, "http://10.244.2.31:8000"]
    assert all(w.address is None for w in found)
    assert cluster.calls == [
        (
            "pods",
            "apps",
            {"app.kubernetes.io/managed-by": "bakery", "app.kubernetes.io/name": "web"},
        )
    ]


def test_worker_addresses_from_client_objects_and_ipv6() -> None:
    pod = load("running-ready")
    pod["status"]["podIP"] = "fd00::12"
    (from_json,) = workers([pod])
    assert from_json.internal_url == "http://[fd00::12]:8000"
    snake = client.V1Pod.model_validate(pod).to_dict()
    assert workers([snake]) == [from_json]


def test_logs_come_per_pod_from_the_container_that_explains(records: RecordStore) -> None:
    failed, crashing = load("init-fetch-failed"), load("crashloop")
    logs = {
        (failed["metadata"]["name"], "fetch-code", True): (
            "2025-06-02T09:14:07.000000001Z fetching s3://bakery-code/...\n"
            "2025-06-02T09:14:08.5Z error: key mismatch\n"
        ),
        (crashing["metadata"]["name"], "app", True): (
            "2025-06-02T09:14:09Z Traceback (most recent call last):\n"
            "2025-06-02T09:14:09Z ModuleNotFoundError: No module named 'flask'\n"
        ),
    }
    found = runtime_on(MemoryCluster([failed, crashing], logs), records).logs("web", previous=True)
    assert found == {
        failed["metadata"]["name"]: ["fetching s3://bakery-code/...", "error: key mismatch"],
        crashing["metadata"]["name"]: [
            "Traceback (most recent call last):",
            "ModuleNotFoundError: No module named 'flask'",
        ],
    }
    assert found[failed["metadata"]["name"]][1].timestamp == "2025-06-02T09:14:08.5Z"


def test_log_lines_keep_the_kubelets_timestamp() -> None:
    lines = log_lines("2025-06-02T09:14:09.123456789Z hello world\n2025-06-02T09:14:10Z \nplain\n")
    assert lines == ["hello world", "", "plain"]
    assert [line.timestamp for line in lines] == [
        "2025-06-02T09:14:09.123456789Z",
        "2025-06-02T09:14:10Z",
        None,
    ]
    assert log_lines("") == []


# --- stop, remove, exposure -----------------------------------------------------------------


def started(records: RecordStore, pods: Iterable[dict[str, Any]] = ()) -> MemoryCluster:
    cluster = MemoryCluster(pods)
    runtime_on(cluster, records).start(config(replicas={"min": 1, "max": 3}), "v2")
    cluster.calls.clear()
    return cluster


def test_stop_deletes_the_autoscaler_and_scales_to_zero(records: RecordStore) -> None:
    cluster = started(records)
    runtime_on(cluster, records).stop("web")
    assert cluster.kinds("delete") == ["HorizontalPodAutoscaler", "ScaledObject"]
    assert cluster.calls[-1] == ("scale", DEPLOYMENT, 0)
    assert "ScaledObject" not in {ref.kind for ref in cluster.objects}


def serving(version: str) -> dict[str, Any]:
    """A ready pod of `version`, created after the other fixtures."""
    pod = load("running-ready")
    pod["metadata"]["labels"]["bakery.dev/version"] = version
    pod["metadata"]["name"] = f"web-{version}-serving"
    pod["metadata"]["creationTimestamp"] = "2025-06-02T09:20:00Z"
    return pod


def test_stopping_a_failed_upgrade_leaves_the_serving_version_up(records: RecordStore) -> None:
    cluster = started(records, [serving("v1"), load("crashloop")])
    runtime_on(cluster, records).stop("web", "v2")
    assert cluster.kinds("scale") == []
    assert cluster.kinds("delete") == []


def test_stopping_a_crashing_first_version_scales_it_down(records: RecordStore) -> None:
    cluster = started(records, [load("crashloop"), load("terminating")])  # v1 is going anyway
    runtime_on(cluster, records).stop("web", "v2")
    assert cluster.calls[-1] == ("scale", DEPLOYMENT, 0)


def test_stopping_an_older_version_or_a_missing_app_does_nothing(records: RecordStore) -> None:
    cluster = started(records)
    runtime_on(cluster, records).stop("web", "v1")
    runtime_on(cluster, records).stop("gone")
    assert [call[0] for call in cluster.calls] == ["get", "pods", "get"]


def test_stops_deployment() -> None:
    v1_terminating, v2_running, v1_running = workers(
        [serving("v1"), load("running-ready"), load("terminating")]  # read oldest first
    )
    assert stops_deployment("v2", "v2", [v2_running, v1_terminating])
    assert not stops_deployment("v2", "v2", [v2_running, v1_running])
    assert not stops_deployment("v1", "v2", [v1_running])
    assert stops_deployment("v2", "v2", [])


def test_remove_all_deletes_every_object_autoscaler_first(records: RecordStore) -> None:
    cluster = started(records)
    runtime_on(cluster, records).remove("web")
    assert cluster.kinds("delete") == [
        "ScaledObject",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Service",
        "Deployment",
        "Secret",
    ]
    assert cluster.objects == {}


def test_remove_keeping_a_version_and_expose_leave_the_cluster_alone(records: RecordStore) -> None:
    cluster = started(records)
    runtime = runtime_on(cluster, records)
    record = records.get("web")
    assert record is not None
    runtime.remove("web", keep_version="v2")
    runtime.expose(record, runtime.workers("web"))
    assert [call[0] for call in cluster.calls] == ["pods"]


def test_public_url_is_the_ingress_until_unexposed(records: RecordStore) -> None:
    cluster = started(records)
    runtime = runtime_on(cluster, records)
    record = records.get("web")
    assert record is not None
    assert runtime.public_url(record) == "http://web.apps.apps.example.com/"
    runtime.unexpose(record)
    assert ("delete", INGRESS) in cluster.calls
    assert runtime.public_url(record) is None


def test_an_internal_only_cluster_has_no_public_url(records: RecordStore) -> None:
    internal = RuntimeSettings(SETTINGS.cluster, keda_installed=True)
    cluster = MemoryCluster()
    runtime = runtime_on(cluster, records, internal)
    runtime.start(config(), "v1")
    record = records.get("web")
    assert record is not None
    assert runtime.public_url(record) is None


# --- ping and settings ------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ping_reports_an_unreachable_api_server_as_unhealthy(records: RecordStore) -> None:
    """The real applier against a port nobody listens on."""
    configuration = client.Configuration(host=f"https://127.0.0.1:{closed_port()}")

    def connect() -> KubernetesApplier:
        return KubernetesApplier(client.ApiClient(configuration), timeout=2)

    runtime = KubernetesRuntime(SETTINGS, records=records, connect=connect)
    with pytest.raises(BackendUnhealthyException, match="unreachable"):
        runtime.ping()


def test_ping_asks_the_connected_cluster(records: RecordStore) -> None:
    cluster = MemoryCluster()
    runtime_on(cluster, records).ping()
    assert cluster.calls == [("ping",)]


def test_settings_from_the_environment() -> None:
    settings = RuntimeSettings.from_environment(
        {
            "BAKERY_K8S_NAMESPACE": "apps",
            "BAKERY_K8S_DOMAIN": "apps.example.com",
            "BAKERY_K8S_FETCHER_SECRETS": "code-store, more ,",
            "BAKERY_K8S_INGRESS_CLASS": "nginx",
            "BAKERY_K8S_KEDA": "1",
        }
    )
    assert settings == RuntimeSettings(
        ClusterSettings(
            domain="apps.example.com", fetcher_secrets=("code-store", "more"), namespace="apps"
        ),
        ingress_class="nginx",
        keda_installed=True,
    )
    assert RuntimeSettings.from_environment({}) == RuntimeSettings()
    with pytest.raises(AppConfigError, match="BAKERY_K8S_KEDA"):
        RuntimeSettings.from_environment({"BAKERY_K8S_KEDA": "maybe"})


# --- images and depends_on ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "where"),
    [
        (f"oci-layout:///root/.local/share/bakery/images@sha256:{'ab' * 32}", "OCI layout"),
        (f"sha256:{'cd' * 32}", "local Docker Engine"),
    ],
)
def test_an_image_only_this_machine_has_is_refused_with_the_registry_way_out(
    records: RecordStore, image: str, where: str
) -> None:
    """bake_image's default target (the layout) and the daemon target give references no
    cluster can pull: refused before anything is applied, saying to bake to a registry."""
    cluster = MemoryCluster()
    with pytest.raises(AppConfigError) as caught:
        runtime_on(cluster, records).start(config(image=image), "v1")
    [problem] = caught.value.problems
    assert problem.startswith(f"image: {image} is in ")
    assert where in problem
    assert "target='registry'" in problem
    assert "BAKERY_REGISTRY" in problem
    assert cluster.calls == []


def test_a_dependent_gets_its_dependencys_service_url_not_a_pod_ip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`depends_on` through the deployer's plan: `api` is rendered with web's Service URL,
    which survives pod restarts and rollouts, although a running pod of web has an IP."""
    monkeypatch.setenv("BAKERY_DATA_DIR", str(tmp_path))
    web, api = config(), config(name="api", depends_on=["web"])
    pod = load("running-ready")  # web's pod at 10.244.2.31, of the version about to deploy
    pod["metadata"]["labels"][VERSION_LABEL] = version_of(web)
    cluster = MemoryCluster([pod])
    runtime = KubernetesRuntime(SETTINGS, connect=lambda: cluster)

    deploy_plan([web, api], runtime, logger_fn=lambda _: None, readiness_condition="async")

    deployment = cluster.objects[app_ref("Deployment", "api", "apps")]
    [container] = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"
    ]
    environment = {item["name"]: item.get("value") for item in container["env"]}
    assert environment["BAKERY_APP_WEB_URL"] == "http://web.apps.svc.cluster.local/"
    service = cluster.objects[app_ref("Service", "web", "apps")]
    assert service["metadata"]["name"] == "web"  # the name the URL's host starts with
