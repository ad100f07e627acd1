"""The Kubernetes runtime: map an app's config, render its manifests, apply them, read its pods.

Nothing here needs a cluster except `KubernetesApplier` (and the runtime's calls through it);
manifests are checked against the official client's models instead of an API server.
"""

from deployer.host.auth import api_auth_headers
from deployer.runtimes.kubernetes.apply import (
    ApplyRequest,
    ResourceRef,
    app_ref,
    app_refs,
    apply_plan,
    prune_plan,
)
from deployer.runtimes.kubernetes.cluster import KubernetesApplier
from deployer.runtimes.kubernetes.errors import (
    InvalidManifest,
    KubernetesRejected,
    KubernetesSpecError,
    KubernetesUnavailable,
)
from deployer.runtimes.kubernetes.exposure import ingress_url, internal_url, public_url
from deployer.runtimes.kubernetes.manifests import render
from deployer.runtimes.kubernetes.mapping import to_kubernetes_spec, unsupported
from deployer.runtimes.kubernetes.runtime import KubernetesRuntime, stops_deployment
from deployer.runtimes.kubernetes.settings import RuntimeSettings
from deployer.runtimes.kubernetes.spec import ClusterSettings, KubernetesAppSpec
from deployer.runtimes.kubernetes.state import (
    LogRequest,
    log_lines,
    logs_request,
    worker_status,
    workers,
)

__all__ = [
    "ApplyRequest",
    "ClusterSettings",
    "InvalidManifest",
    "KubernetesAppSpec",
    "KubernetesApplier",
    "KubernetesRejected",
    "KubernetesRuntime",
    "KubernetesSpecError",
    "KubernetesUnavailable",
    "LogRequest",
    "ResourceRef",
    "RuntimeSettings",
    "api_auth_headers",
    "app_ref",
    "app_refs",
    "apply_plan",
    "ingress_url",
    "internal_url",
    "log_lines",
    "logs_request",
    "prune_plan",
    "public_url",
    "render",
    "stops_deployment",
    "to_kubernetes_spec",
    "unsupported",
    "worker_status",
    "workers",
]
