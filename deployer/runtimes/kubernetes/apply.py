"""Server-side apply of rendered manifests, and what to delete, as plans (plain data).

Server-side apply with one field manager makes a deploy idempotent and lets other controllers
(the HPA, KEDA) own the fields they write. Objects that a previous version had but this one
does not (an HPA after a switch to fixed replicas, an Ingress after auth was dropped) are
pruned by name, since each app has at most one of each. `cluster.KubernetesApplier` carries
the plans out.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deployer.runtimes.kubernetes.exposure import auth_secret_name

FIELD_MANAGER = "bakery"
KINDS = {  # every kind an app may have, in apply order: kind → (apiVersion, plural)
    "Secret": ("v1", "secrets"),
    "Deployment": ("apps/v1", "deployments"),
    "Service": ("v1", "services"),
    "Ingress": ("networking.k8s.io/v1", "ingresses"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers"),
    "ScaledObject": ("keda.sh/v1alpha1", "scaledobjects"),
}
ALWAYS = frozenset({"Deployment", "Service"})
"""Every version has these; the other kinds come and go with the app's options."""
AUTOSCALERS = ("HorizontalPodAutoscaler", "ScaledObject")


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


def app_ref(kind: str, app: str, namespace: str) -> ResourceRef:
    """The app's object of `kind`: named after the app (its auth Secret after that)."""
    api_version, plural = KINDS[kind]
    name = auth_secret_name(app) if kind == "Secret" else app
    return ResourceRef(api_version, kind, plural, namespace, name)


def app_refs(app: str, namespace: str) -> list[ResourceRef]:
    """Every object the app may have, in apply order."""
    return [app_ref(kind, app, namespace) for kind in KINDS]


def apply_plan(manifests: Iterable[Mapping[str, Any]]) -> list[ApplyRequest]:
    return [ApplyRequest(_ref(manifest), manifest) for manifest in manifests]


def prune_plan(manifests: Iterable[Mapping[str, Any]]) -> list[ResourceRef]:
    """The optional objects of this app that the rendered set no longer contains."""
    manifests = list(manifests)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
    present = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    return [
        ref
        for ref in app_refs(name, namespace)
        if ref.kind not in ALWAYS and (ref.kind, ref.name) not in present
    ]


def _ref(manifest: Mapping[str, Any]) -> ResourceRef:
    meta = manifest["metadata"]
    kind = manifest["kind"]
    plural = KINDS[kind][1]
    return ResourceRef(manifest["apiVersion"], kind, plural, meta["namespace"], meta["name"])
