"""Autoscaling: a KEDA ScaledObject on requests per minute where KEDA is installed, else an HPA.

Requests are counted by ingress-nginx (`nginx_ingress_controller_requests`, scraped by
Prometheus), so rpm scaling needs the app's Ingress, which a non-public app does not have.
KEDA also scales to zero and back. Without KEDA the HPA can only use what the metrics-server
offers, CPU, as a stand-in for load: the rpm target is not honoured there, and min 0 is
refused (the HPA cannot scale to zero).
"""

from typing import Any

from deployer.model.auth_types import DEFAULT_RPM
from deployer.runtimes.kubernetes.errors import KubernetesSpecError
from deployer.runtimes.kubernetes.spec import ClusterSettings, KubernetesAppSpec
from deployer.runtimes.kubernetes.workload import metadata

CPU_TARGET_PERCENT = 80
RPM_QUERY = (
    'sum(rate(nginx_ingress_controller_requests{{namespace="{namespace}",ingress="{name}"}}[1m]))'
    " * 60"
)
_TARGET = {"apiVersion": "apps/v1", "kind": "Deployment"}


def autoscaler(
    spec: KubernetesAppSpec, *, keda_installed: bool, exposed: bool, cluster: ClusterSettings
) -> dict[str, Any] | None:
    """The object that scales the app between min and max, or None for a fixed count."""
    if not spec.autoscaled:
        return None
    if keda_installed:
        if not exposed:
            raise KubernetesSpecError(
                f"app {spec.name} scales on requests per minute, which are counted at its "
                "Ingress, but it has none (it is not public, or the cluster has no ingress "
                "class): make it public on a cluster with an ingress class, or use a fixed "
                "number of replicas"
            )
        return scaled_object(spec, cluster)
    if spec.min_replicas == 0:
        raise KubernetesSpecError(
            f"app {spec.name} asks for min 0 replicas, but scaling to zero needs KEDA, which "
            "this cluster does not have: use min >= 1"
        )
    if spec.cpu is None:
        raise KubernetesSpecError(
            f"app {spec.name} autoscales, and without KEDA that is on CPU use, which needs "
            "resources.cpu: set it, or use a fixed number of replicas"
        )
    return horizontal_pod_autoscaler(spec)


def horizontal_pod_autoscaler(spec: KubernetesAppSpec) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(spec),
        "spec": {
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "averageUtilization": CPU_TARGET_PERCENT,
                            "type": "Utilization",
                        },
                    },
                    "type": "Resource",
                }
            ],
            "minReplicas": spec.min_replicas,
            "scaleTargetRef": {**_TARGET, "name": spec.name},
        },
    }


def scaled_object(spec: KubernetesAppSpec, cluster: ClusterSettings) -> dict[str, Any]:
    """keda.sh/v1alpha1 (the client has no model for it): one replica per `rpm` requests/min."""
    query = RPM_QUERY.format(namespace=spec.namespace, name=spec.name)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(spec),
        "spec": {
            "cooldownPeriod": 300,
            "maxReplicaCount": spec.max_replicas,
            "minReplicaCount": spec.min_replicas,
            "pollingInterval": 15,
            "scaleTargetRef": {**_TARGET, "name": spec.name},
            "triggers": [
                {
                    "metadata": {
                        "activationThreshold": "0",
                        "query": query,
                        "serverAddress": cluster.prometheus_url,
                        "threshold": str(spec.rpm or DEFAULT_RPM),
                    },
                    "type": "prometheus",
                }
            ],
        },
    }
