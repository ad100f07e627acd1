"""Server-side apply plans as data; the applier without a cluster fails with a clear error."""

import socket
from pathlib import Path

import pytest
from kubernetes import client

from deployer.runtimes.kubernetes import (
    ClusterSettings,
    KubernetesApplier,
    KubernetesAppSpec,
    KubernetesUnavailable,
    ResourceRef,
    apply_plan,
    prune_plan,
    render,
)

SPEC = KubernetesAppSpec(
    name="web", version="v3", namespace="apps", image="registry.example.com/web:1", port=8000
)


def test_apply_plan_is_one_forced_bakery_apply_per_manifest() -> None:
    manifests = render(SPEC, keda_installed=False, ingress_class=None)
    plan = apply_plan(manifests)
    assert [request.ref for request in plan] == [
        ResourceRef("apps/v1", "Deployment", "deployments", "apps", "web"),
        ResourceRef("v1", "Service", "services", "apps", "web"),
    ]
    assert all(request.field_manager == "bakery" and request.force for request in plan)
    assert [request.body for request in plan] == manifests


def test_prune_plan_lists_optional_objects_this_version_does_not_have() -> None:
    spec = KubernetesAppSpec(
        name="web",
        version="v3",
        namespace="apps",
        image="registry.example.com/web:1",
        port=8000,
        public=True,  # Browser auth: an Ingress, no token Secret
        min_replicas=0,
        max_replicas=2,
    )
    cluster = ClusterSettings(
        "example.com",
        browser_auth_url="https://login.example.com/oauth2/auth",
        browser_auth_signin="https://login.example.com/oauth2/start",
    )
    manifests = render(spec, keda_installed=True, ingress_class="nginx", cluster=cluster)
    assert prune_plan(manifests) == [
        ResourceRef("v1", "Secret", "secrets", "apps", "web-api-auth"),
        ResourceRef(
            "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "apps", "web"
        ),
    ]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_cluster_is_reported_as_unavailable() -> None:
    configuration = client.Configuration(host=f"https://127.0.0.1:{closed_port()}")
    with pytest.raises(KubernetesUnavailable, match="unreachable"):
        KubernetesApplier(client.ApiClient(configuration), timeout=2)


def test_no_configured_cluster_is_reported_as_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubernetesUnavailable, match="no Kubernetes cluster is configured"):
        KubernetesApplier.from_environment()
