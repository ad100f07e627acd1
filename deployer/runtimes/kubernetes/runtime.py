"""`KubernetesRuntime`: the deployer's `Runtime` on a Kubernetes cluster.

The cluster is the record of what runs: `start` renders the app's objects and applies them,
and pods become workers through `state.py`. One Deployment holds every version's pods, so
the Deployment itself rolls versions: an older version's pods go once the new ones are
ready, and the Service sends traffic to the ready pods of any version. That is why `expose`
has nothing to switch and `remove` with a version to keep has nothing to delete. Decisions
are made here or in pure modules; `KubernetesApplier` only makes the calls.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from deployer.exceptions import (
    AppConfigError,
    AppCreationFailedException,
    AppNotFoundException,
    BackendUnhealthyException,
)
from deployer.model.config import AppConfig
from deployer.orchestration.records import AppRecord, RecordStore
from deployer.runtimes.base import LogLine, Worker
from deployer.runtimes.kubernetes import state
from deployer.runtimes.kubernetes.apply import (
    AUTOSCALERS,
    app_ref,
    app_refs,
    apply_plan,
    prune_plan,
)
from deployer.runtimes.kubernetes.cluster import KubernetesApplier
from deployer.runtimes.kubernetes.errors import (
    KubernetesRejected,
    KubernetesSpecError,
    KubernetesUnavailable,
)
from deployer.runtimes.kubernetes.exposure import ingress_url, service_url
from deployer.runtimes.kubernetes.labels import VERSION_LABEL, selector_labels
from deployer.runtimes.kubernetes.manifests import render
from deployer.runtimes.kubernetes.mapping import refuse, to_kubernetes_spec, unsupported
from deployer.runtimes.kubernetes.settings import RuntimeSettings
from deployer.runtimes.kubernetes.spec import KubernetesAppSpec

KIND = "kubernetes"


class KubernetesRuntime:
    """Start, observe, stop and remove an app's pods; the API token comes from its record.

    `start(config, version)` has no record parameter, so the runtime reads the app's record
    from `records` (by default the deployer's own store for this runtime, which
    `deploy_one` writes, token included, before it starts anything).
    """

    kind = KIND

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        *,
        records: RecordStore | None = None,
        connect: Callable[[], KubernetesApplier] = KubernetesApplier.from_environment,
    ) -> None:
        self.settings = settings or RuntimeSettings.from_environment()
        self._records = records or RecordStore(KIND)
        self._connect = connect
        self._applier: KubernetesApplier | None = None

    @property
    def namespace(self) -> str:
        return self.settings.cluster.namespace

    def _cluster(self) -> KubernetesApplier:
        """Connected on first use, so building the runtime needs no cluster."""
        if self._applier is None:
            self._applier = self._connect()
        return self._applier

    def ping(self) -> None:
        with _errors():
            self._cluster().ping()

    def refuse_unsupported(self, config: AppConfig) -> None:
        problems = unsupported(config)
        if config.replicas.scaling_policy is not None and not self.settings.keda_installed:
            problems.append(
                "replicas: min != max scales on requests per minute (scaling_policy.rpm), which "
                "needs KEDA, and this cluster has none (BAKERY_K8S_KEDA=1 says it has); "
                "use a fixed number of replicas, or install KEDA"
            )
        refuse(config, problems)

    def start(self, config: AppConfig, version: str) -> None:
        """Apply `version`'s objects, then delete the ones it no longer has.

        Pruning here rather than in `remove`: the objects are the app's, shared by all its
        versions, and a leftover autoscaler would fight a new fixed replica count while the
        deployer waits for readiness.
        """
        self.refuse_unsupported(config)
        record = self._records.get(config.name)
        if record is None:
            raise AppNotFoundException(config.name)
        spec = to_kubernetes_spec(config, version, record, self.settings.cluster)
        manifests = self._render(spec)
        with _errors(creating=config.name):
            cluster = self._cluster()
            cluster.apply(apply_plan(manifests))
            cluster.delete(prune_plan(manifests))
            if spec.autoscaled and spec.min_replicas > 0:
                self._resume(cluster, spec)

    def _render(self, spec: KubernetesAppSpec) -> list[dict[str, Any]]:
        """What this cluster cannot do for the app (no browser login, no domain, ...) is
        refused here, before anything is applied."""
        try:
            return render(
                spec,
                keda_installed=self.settings.keda_installed,
                ingress_class=self.settings.ingress_class,
                cluster=self.settings.cluster,
            )
        except KubernetesSpecError as error:
            raise AppConfigError(f"app {spec.name!r} cannot run on this cluster: {error}") from None

    def _resume(self, cluster: KubernetesApplier, spec: KubernetesAppSpec) -> None:
        """`stop` left the Deployment at 0 replicas, where an autoscaler never scales it up."""
        ref = app_ref("Deployment", spec.name, spec.namespace)
        deployment = cluster.get(ref)
        if deployment is not None and deployment["spec"].get("replicas") == 0:
            cluster.scale(ref, spec.min_replicas)

    def workers(self, name: str) -> list[Worker]:
        with _errors():
            return state.workers(self._cluster().pods(self.namespace, selector_labels(name)))

    def logs(self, name: str, previous: bool = False) -> dict[str, list[LogLine]]:
        """Each pod's app container, or its code fetcher while that is what fails."""
        with _errors():
            cluster = self._cluster()
            requests = [
                state.logs_request(pod, previous=previous)
                for pod in cluster.pods(self.namespace, selector_labels(name))
            ]
            return {r.name: state.log_lines(cluster.pod_log(r)) for r in requests}

    def stop(self, name: str, version: str | None = None) -> None:
        """Scale the Deployment to 0 and delete its autoscaler, which would scale it back up.

        Pods are deleted, and their logs with them: Kubernetes keeps no stopped pods.
        """
        with _errors():
            cluster = self._cluster()
            ref = app_ref("Deployment", name, self.namespace)
            deployment = cluster.get(ref)
            if deployment is None:
                return
            if version is not None:
                current = (deployment["metadata"].get("labels") or {}).get(VERSION_LABEL)
                pods = cluster.pods(self.namespace, selector_labels(name))
                if not stops_deployment(version, current, state.workers(pods)):
                    return
            cluster.delete(app_ref(kind, name, self.namespace) for kind in AUTOSCALERS)
            cluster.scale(ref, 0)

    def remove(self, name: str, keep_version: str | None = None) -> None:
        """Without `keep_version`, delete every object of the app (its pods go with them).

        With it there is nothing to do: the Deployment's rollout removes older versions'
        pods itself, and `start` already pruned what the kept version does not have.
        """
        if keep_version is not None:
            return
        with _errors():
            self._cluster().delete(reversed(app_refs(name, self.namespace)))

    def expose(self, record: AppRecord, workers: Sequence[Worker]) -> None:
        """Nothing to do: `start` applied the Ingress, whose Service picks the ready pods."""

    def public_url(self, record: AppRecord) -> str | None:
        """The URL of the app's Ingress; None when it has none: not public (reachable only
        in the cluster, at the Service's `internal_url`), no ingress class, or unexposed."""
        with _errors():
            ingress = self._cluster().get(app_ref("Ingress", record.name, self.namespace))
        return ingress_url(ingress) if ingress is not None else None

    def internal_url(self, name: str) -> str | None:
        """The app's Service, which other apps use (`BAKERY_APP_<NAME>_URL`): a pod's IP
        changes with every restart and rollout; None when the app has no Service."""
        with _errors():
            found = self._cluster().get(app_ref("Service", name, self.namespace))
        return service_url(name, self.namespace) if found is not None else None

    def unexpose(self, record: AppRecord) -> None:
        """Delete the Ingress; the next `start` applies it again."""
        with _errors():
            self._cluster().delete([app_ref("Ingress", record.name, self.namespace)])


def stops_deployment(version: str, current: str | None, workers: Sequence[Worker]) -> bool:
    """Whether stopping `version` may scale the Deployment down.

    Only when the Deployment is at `version` and no worker of another version still serves:
    during a failed upgrade the rollout keeps the old version up, and scaling down would
    stop that too. The new version's pods are then left to the kubelet's restart backoff.
    """
    if version != current:
        return False  # an older version: the rollout removes its pods
    return not any(w.version != version and w.status.running for w in workers)


@contextmanager
def _errors(creating: str | None = None) -> Iterator[None]:
    """Cluster errors → the deployer's: a refused request is a creation failure of app
    `creating` when given, else (like an unreachable cluster) an unhealthy backend."""
    try:
        yield
    except KubernetesUnavailable as error:
        raise BackendUnhealthyException(KIND, str(error)) from None
    except KubernetesRejected as error:
        if creating is not None:
            raise AppCreationFailedException(
                creating, error.status_code, error.error_text
            ) from None
        raise BackendUnhealthyException(KIND, str(error), error.status_code) from None
