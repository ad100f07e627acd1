"""Which cluster `KubernetesRuntime()` deploys to, from `BAKERY_K8S_*` environment variables.

`BAKERY_RUNTIME=kubernetes` builds the runtime without arguments, so what differs between
clusters (namespace, domain, ingress class, KEDA, the code fetcher) comes from the
environment; the API server and credentials come from the kubeconfig as usual.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from deployer.exceptions import AppConfigError
from deployer.runtimes.kubernetes.spec import ClusterSettings

PREFIX = "BAKERY_K8S_"
_TRUE, _FALSE = ("1", "true", "yes"), ("", "0", "false", "no")


@dataclass(frozen=True)
class RuntimeSettings:
    """`ClusterSettings` plus the two facts `render` takes separately."""

    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    ingress_class: str | None = None
    """None: the cluster serves no Ingress, so apps are reachable only inside it."""
    keda_installed: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "RuntimeSettings":
        """`BAKERY_K8S_<FIELD>` for each `ClusterSettings` field (lists comma-separated),
        `BAKERY_K8S_INGRESS_CLASS` and `BAKERY_K8S_KEDA` (1/0); unset keeps the default."""
        cluster: dict[str, Any] = {}
        for setting in fields(ClusterSettings):
            value = environ.get(PREFIX + setting.name.upper())
            if value:
                is_list = isinstance(setting.default, tuple)
                cluster[setting.name] = _items(value) if is_list else value
        keda = environ.get(PREFIX + "KEDA", "").strip().lower()
        if keda not in _TRUE + _FALSE:
            raise AppConfigError(f"{PREFIX}KEDA={keda!r}: use 1 (KEDA is installed) or 0")
        return cls(
            cluster=ClusterSettings(**cluster),
            ingress_class=environ.get(PREFIX + "INGRESS_CLASS") or None,
            keda_installed=keda in _TRUE,
        )


def _items(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())
