"""The Kubernetes runtime: render an app's manifests, apply them, read its pods' state.

Nothing here needs a cluster except `KubernetesApplier`; manifests are checked against the
official client's models instead of an API server.
"""

from deployer.auth import api_auth_headers
from deployer.runtimes.kubernetes.apply import (
    ApplyRequest,
    KubernetesApplier,
    ResourceRef,
    apply_plan,
    prune_plan,
)
from deployer.runtimes.kubernetes.errors import (
    InvalidManifest,
    KubernetesRejected,
    KubernetesSpecError,
    KubernetesUnavailable,
)
from deployer.runtimes.kubernetes.exposure import internal_url, public_url
from deployer.runtimes.kubernetes.manifests import render
from deployer.runtimes.kubernetes.spec import ClusterSettings, KubernetesAppSpec
from deployer.runtimes.kubernetes.state import (
    LogRequest,
    WorkerStatus,
    logs_request,
    worker_status,
    worker_statuses,
)

__all__ = [
    "ApplyRequest",
    "ClusterSettings",
    "InvalidManifest",
    "KubernetesAppSpec",
    "KubernetesApplier",
    "KubernetesRejected",
    "KubernetesSpecError",
    "KubernetesUnavailable",
    "LogRequest",
    "ResourceRef",
    "WorkerStatus",
    "api_auth_headers",
    "apply_plan",
    "internal_url",
    "logs_request",
    "prune_plan",
    "public_url",
    "render",
    "worker_status",
    "worker_statuses",
]
