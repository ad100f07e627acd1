"""Server-side apply of rendered manifests, as a plan (plain data) and a thin client over it.

Server-side apply with one field manager makes a deploy idempotent and lets other controllers
(the HPA, KEDA) own the fields they write. Objects that a previous version had but this one
does not (an HPA after a switch to fixed replicas, an Ingress after auth was dropped) are
pruned by name, since each app has at most one of each.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from deployer.runtimes.kubernetes.errors import KubernetesRejected, KubernetesUnavailable
from deployer.runtimes.kubernetes.exposure import auth_secret_name

FIELD_MANAGER = "bakery"
PLURALS = {
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Ingress": "ingresses",
    "ScaledObject": "scaledobjects",
    "Secret": "secrets",
    "Service": "services",
}
_OPTIONAL = (  # (apiVersion, kind, name suffix) of what an app may or may not have
    ("v1", "Secret", "api-auth"),
    ("networking.k8s.io/v1", "Ingress", ""),
    ("autoscaling/v2", "HorizontalPodAutoscaler", ""),
    ("keda.sh/v1alpha1", "ScaledObject", ""),
)


@dataclass(frozen=True)
class ResourceRef:
    api_version: str
    kind: str
    plural: str
    namespace: str
    name: str


@dataclass(frozen=True)
class ApplyRequest:
    """One PATCH with `application/apply-patch+yaml` and these query parameters."""

    ref: ResourceRef
    body: Mapping[str, Any]
    field_manager: str = FIELD_MANAGER
    force: bool = True
    """Take over fields another manager (e.g. a `kubectl edit`) set: bakery's config wins."""


def apply_plan(manifests: Iterable[Mapping[str, Any]]) -> list[ApplyRequest]:
    return [ApplyRequest(_ref(manifest), manifest) for manifest in manifests]


def prune_plan(manifests: Iterable[Mapping[str, Any]]) -> list[ResourceRef]:
    """The optional objects of this app that the rendered set no longer contains."""
    manifests = list(manifests)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
    present = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    stale = []
    for api_version, kind, suffix in _OPTIONAL:
        object_name = auth_secret_name(name) if suffix else name
        if (kind, object_name) not in present:
            stale.append(ResourceRef(api_version, kind, PLURALS[kind], namespace, object_name))
    return stale


class KubernetesApplier:
    """Applies plans through the dynamic client; every failure becomes one of our two errors."""

    def __init__(self, api_client: client.ApiClient, timeout: float = 10.0) -> None:
        self._timeout = timeout
        host = api_client.configuration.host
        try:
            client.VersionApi(api_client).get_code(_request_timeout=timeout)
            self._dynamic = DynamicClient(api_client)
        except ApiException as error:
            raise _translate(error, f"the Kubernetes API server at {host}") from None
        except urllib3.exceptions.HTTPError as error:
            raise KubernetesUnavailable(
                f"the Kubernetes API server at {host} is unreachable ({error}); "
                "check the cluster and your kubeconfig"
            ) from None

    @classmethod
    def from_environment(cls) -> Self:
        """In a pod: its service account; elsewhere: `$KUBECONFIG` or ~/.kube/config."""
        try:
            config.load_incluster_config()
        except ConfigException:
            try:
                config.load_kube_config()
            except (ConfigException, OSError) as error:
                raise KubernetesUnavailable(
                    f"no Kubernetes cluster is configured ({error}): run inside the cluster "
                    "or point KUBECONFIG at a kubeconfig"
                ) from None
        return cls(client.ApiClient())

    def apply(self, plan: Iterable[ApplyRequest]) -> None:
        for request in plan:
            ref = request.ref
            self._call(
                ref,
                "server_side_apply",
                body=dict(request.body),
                name=ref.name,
                namespace=ref.namespace,
                field_manager=request.field_manager,
                force_conflicts=request.force,
            )

    def delete(self, refs: Iterable[ResourceRef]) -> None:
        """Delete each object if it exists (a missing object or kind is already pruned)."""
        for ref in refs:
            try:
                self._call(ref, "delete", name=ref.name, namespace=ref.namespace)
            except KubernetesRejected as error:
                if error.status_code != 404:
                    raise

    def _call(self, ref: ResourceRef, verb: str, **kwargs: Any) -> Any:
        where = f"{ref.kind} {ref.namespace}/{ref.name}"
        try:
            resource = self._dynamic.resources.get(api_version=ref.api_version, kind=ref.kind)
            return getattr(self._dynamic, verb)(resource, _request_timeout=self._timeout, **kwargs)
        except ResourceNotFoundError:
            raise KubernetesRejected(
                404, f"the cluster does not serve {ref.api_version} {ref.kind} (for {where})"
            ) from None
        except ApiException as error:
            raise _translate(error, where) from None
        except urllib3.exceptions.HTTPError as error:
            raise KubernetesUnavailable(
                f"{where}: the API server is unreachable ({error})"
            ) from None


def _ref(manifest: Mapping[str, Any]) -> ResourceRef:
    meta = manifest["metadata"]
    kind = manifest["kind"]
    return ResourceRef(manifest["apiVersion"], kind, PLURALS[kind], meta["namespace"], meta["name"])


def _translate(error: ApiException, where: str) -> Exception:
    status = error.status or 0
    if status >= 500 or status == 0:
        return KubernetesUnavailable(f"{where}: the API server failed ({status} {error.reason})")
    return KubernetesRejected(status, f"{where}: {error.body or error.reason}")
