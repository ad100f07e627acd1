"""All the objects of one app version, in apply order, each checked against the API schema."""

from typing import Any

from deployer.runtimes.kubernetes.exposure import auth_secret, exposed, ingress, service
from deployer.runtimes.kubernetes.scaling import autoscaler
from deployer.runtimes.kubernetes.spec import ClusterSettings, KubernetesAppSpec
from deployer.runtimes.kubernetes.validate import validate
from deployer.runtimes.kubernetes.workload import deployment


def render(
    spec: KubernetesAppSpec,
    *,
    keda_installed: bool,
    ingress_class: str | None,
    cluster: ClusterSettings | None = None,
) -> list[dict[str, Any]]:
    """Secret, Deployment, Service, Ingress, HPA or ScaledObject, as the app needs them.

    A public app gets an Ingress enforcing its auth type, and the token Secret that Ingress
    checks (API, BrowserAndApi); a non-public one only its Service. `ingress_class` None
    means the cluster serves no Ingress: apps stay internal. The same inputs give the same
    list, key order included, so rendered output can be compared and an unchanged app
    re-applies as a no-op. Raises `KubernetesSpecError` for what this cluster cannot honour.
    """
    cluster = cluster or ClusterSettings()
    is_exposed = exposed(spec, ingress_class)
    manifests = []
    if is_exposed and spec.checks_token:
        assert spec.api_token is not None  # the spec requires it
        manifests.append(auth_secret(spec, spec.api_token))
    manifests += [deployment(spec, cluster), service(spec)]
    if is_exposed and ingress_class is not None:
        manifests.append(ingress(spec, ingress_class, cluster))
    scaler = autoscaler(spec, keda_installed=keda_installed, exposed=is_exposed, cluster=cluster)
    if scaler is not None:
        manifests.append(scaler)
    for manifest in manifests:
        validate(manifest)
    return [_sorted_keys(manifest) for manifest in manifests]


def _sorted_keys(value: Any) -> Any:
    """Maps in key order (lists keep theirs: they are ordered in the API), for stable output."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value
