"""The API server calls the runtime makes, each one thin, each failure one of two errors.

Everything the runtime decides (what to apply, prune, scale or read) is plain data computed
elsewhere and tested without a cluster; this class only carries it out, so it is the one
part that needs a live cluster to be exercised (see README.md).
"""

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from deployer.runtimes.kubernetes.apply import FIELD_MANAGER, ApplyRequest, ResourceRef
from deployer.runtimes.kubernetes.errors import KubernetesRejected, KubernetesUnavailable
from deployer.runtimes.kubernetes.state import LogRequest

_NO_LOG = frozenset({400, 404})
"""A container that has not started, or has no previous execution, or a pod just gone."""


class KubernetesApplier:
    """Applies plans and reads pods, Deployments and logs through one API client."""

    def __init__(self, api_client: client.ApiClient, timeout: float = 10.0) -> None:
        self._api_client = api_client
        self._timeout = timeout
        self._server = f"the Kubernetes API server at {api_client.configuration.host}"
        self.ping()
        with _translated(self._server):
            self._dynamic = DynamicClient(api_client)

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

    def ping(self) -> None:
        """Raise `KubernetesUnavailable` unless the API server answers."""
        with _translated(self._server):
            client.VersionApi(self._api_client).get_code(_request_timeout=self._timeout)

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

    def get(self, ref: ResourceRef) -> dict[str, Any] | None:
        """The object as JSON, None when it (or its kind) does not exist."""
        try:
            found = self._call(ref, "get", name=ref.name, namespace=ref.namespace)
        except KubernetesRejected as error:
            if error.status_code != 404:
                raise
            return None
        return found.to_dict()

    def scale(self, ref: ResourceRef, replicas: int) -> None:
        """Set the replica count through the scale subresource, as `kubectl scale` does."""
        self._call(
            ref,
            "patch",
            subresource="scale",
            body={"spec": {"replicas": replicas}},
            name=ref.name,
            namespace=ref.namespace,
            content_type="application/merge-patch+json",
            field_manager=FIELD_MANAGER,
        )

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every pod in `namespace` carrying all of `labels`, as JSON."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        where = f"pods {selector} in {namespace}"
        with _translated(where):
            resource = self._dynamic.resources.get(api_version="v1", kind="Pod")
            found = self._dynamic.get(
                resource,
                namespace=namespace,
                label_selector=selector,
                _request_timeout=self._timeout,
            )
        return list(found.to_dict().get("items") or [])

    def pod_log(self, request: LogRequest) -> str:
        """The container's log text; empty when it has none to give (see `_NO_LOG`)."""
        where = f"log of pod {request.namespace}/{request.name} container {request.container}"
        try:
            with _translated(where):
                return client.CoreV1Api(self._api_client).read_namespaced_pod_log(
                    **request.kwargs(), _request_timeout=self._timeout
                )
        except KubernetesRejected as error:
            if error.status_code not in _NO_LOG:
                raise
            return ""

    def _call(
        self, ref: ResourceRef, verb: str, subresource: str | None = None, **kwargs: Any
    ) -> Any:
        where = f"{ref.kind} {ref.namespace}/{ref.name}"
        with _translated(where):
            try:
                resource = self._dynamic.resources.get(api_version=ref.api_version, kind=ref.kind)
            except ResourceNotFoundError:
                raise KubernetesRejected(
                    404, f"the cluster does not serve {ref.api_version} {ref.kind} (for {where})"
                ) from None
            if subresource is not None:
                resource = resource.subresources[subresource]
            return getattr(self._dynamic, verb)(resource, _request_timeout=self._timeout, **kwargs)


@contextmanager
def _translated(where: str) -> Iterator[None]:
    """Client and transport errors → `KubernetesRejected` (4xx) or `KubernetesUnavailable`."""
    try:
        yield
    except ApiException as error:
        status = error.status or 0
        if status >= 500 or status == 0:
            raise KubernetesUnavailable(
                f"{where}: the API server failed ({status} {error.reason})"
            ) from None
        raise KubernetesRejected(status, f"{where}: {error.body or error.reason}") from None
    except urllib3.exceptions.HTTPError as error:
        raise KubernetesUnavailable(
            f"{where}: the API server is unreachable ({error}); "
            "check the cluster and your kubeconfig"
        ) from None
