"""The Deployment: the app's pods, their code, environment, resources and readiness probe.

The code package is fetched by an init container running `bakery fetch`, which verifies the
package's key; the app image need not contain bakery. It extracts into `/workspace/code` on an
emptyDir mounted at `/workspace`: `fetch_code` stages next to its destination and renames, which
works inside one volume but not onto a mount point.
"""

from typing import Any

from deployer.runtimes.kubernetes.labels import (
    APP_CONTAINER,
    FETCH_CONTAINER,
    VERSION_LABEL,
    selector_labels,
)
from deployer.runtimes.kubernetes.spec import ClusterSettings, KubernetesAppSpec

WORKSPACE = "/workspace"
CODE_DIR = f"{WORKSPACE}/code"
PORT_NAME = "http"
GPU_RESOURCE = "nvidia.com/gpu"
FETCHER_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}}


def app_labels(spec: KubernetesAppSpec) -> dict[str, str]:
    """Every object's labels: the user's, then ours (which validation keeps from clashing)."""
    labels = {**spec.labels, **selector_labels(spec.name), VERSION_LABEL: spec.version}
    return dict(sorted(labels.items()))


def metadata(spec: KubernetesAppSpec, name: str | None = None) -> dict[str, Any]:
    return {"labels": app_labels(spec), "name": name or spec.name, "namespace": spec.namespace}


def deployment(spec: KubernetesAppSpec, cluster: ClusterSettings) -> dict[str, Any]:
    """Replicas are left to the autoscaler when there is one, so an apply never fights it."""
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(spec.name)},
        "template": {"metadata": {"labels": app_labels(spec)}, "spec": _pod_spec(spec, cluster)},
    }
    if not spec.autoscaled:
        deployment_spec["replicas"] = spec.min_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec),
        "spec": deployment_spec,
    }


def _pod_spec(spec: KubernetesAppSpec, cluster: ClusterSettings) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [_app_container(spec)], "enableServiceLinks": False}
    volumes = []
    if spec.code_url is not None and spec.code_key is not None:
        pod["initContainers"] = [_fetch_container(spec.code_url, spec.code_key, cluster)]
        volumes.append({"emptyDir": {}, "name": "workspace"})
    if spec.shared_memory is not None:
        volumes.append(
            {"emptyDir": {"medium": "Memory", "sizeLimit": spec.shared_memory}, "name": "dshm"}
        )
    if volumes:
        pod["volumes"] = volumes
    return pod


def _app_container(spec: KubernetesAppSpec) -> dict[str, Any]:
    container: dict[str, Any] = {
        "env": [{"name": "PORT", "value": str(spec.port)}]
        + [{"name": key, "value": value} for key, value in sorted(spec.environment.items())],
        "image": spec.image,
        "name": APP_CONTAINER,
        "ports": [{"containerPort": spec.port, "name": PORT_NAME, "protocol": "TCP"}],
        "readinessProbe": {
            "failureThreshold": 3,
            "periodSeconds": 5,
            "tcpSocket": {"port": PORT_NAME},
        },
        # A crash's last log lines land in the pod status, where the state reader finds them.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.commands:  # in order, each only if the one before succeeded
        container["command"] = ["/bin/sh", "-c", " && ".join(spec.commands)]
    if spec.secrets:
        container["envFrom"] = [{"secretRef": {"name": secret}} for secret in spec.secrets]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    mounts = []
    if spec.code_url is not None:
        mounts.append({"mountPath": WORKSPACE, "name": "workspace"})
        container["workingDir"] = CODE_DIR
    if spec.shared_memory is not None:
        mounts.append({"mountPath": "/dev/shm", "name": "dshm"})
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _resources(spec: KubernetesAppSpec) -> dict[str, dict[str, str]]:
    """cpu, memory and disk are requests; memory and disk are also limits (no CPU throttling).

    A Memory-backed /dev/shm counts against the memory limit.
    """
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.cpu is not None:
        requests["cpu"] = spec.cpu
    if spec.memory is not None:
        requests["memory"] = limits["memory"] = spec.memory
    if spec.disk is not None:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = spec.disk
    if spec.gpu is not None:
        limits[GPU_RESOURCE] = spec.gpu
    resources = {}
    if limits:
        resources["limits"] = dict(sorted(limits.items()))
    if requests:
        resources["requests"] = dict(sorted(requests.items()))
    return resources


def _fetch_container(url: str, key: str, cluster: ClusterSettings) -> dict[str, Any]:
    container: dict[str, Any] = {
        "command": ["bakery", "fetch", url, CODE_DIR, "--key", key],
        "image": cluster.fetcher_image,
        "name": FETCH_CONTAINER,
        "resources": FETCHER_RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"mountPath": WORKSPACE, "name": "workspace"}],
    }
    if cluster.fetcher_secrets:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in cluster.fetcher_secrets]
    return container
