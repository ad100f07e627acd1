"""What the Kubernetes runtime needs to know about one app, and about the cluster it runs on.

`KubernetesAppSpec` is deliberately narrower than the deployer's `AppConfig`: `mapping.py` maps
the config onto it, and the renderer never reads the config. Everything is checked here, once,
so the renderer can trust its input; names and quantities by the same rules the config uses
(`deployer.model.names`, `deployer.model.quantities`), so the two can never disagree.
"""

import re
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from typing import Literal

from deployer.exceptions import AppConfigError
from deployer.model.auth_types import AUTH_TYPES, TOKEN_AUTH_TYPES, AuthType
from deployer.model.names import (
    is_app_name,
    is_env_name,
    is_label_key,
    is_label_value,
    is_secret_name,
)
from deployer.model.quantities import parse_bytes, parse_cpu, parse_gpu
from deployer.runtimes.kubernetes.errors import KubernetesSpecError
from deployer.runtimes.kubernetes.labels import RENDERER_LABELS

DEFAULT_FETCHER_IMAGE = f"bakery:{package_version('bakery')}"
"""The bakery image (it has `bakery fetch`); push it where the cluster can pull it."""

_TOKEN = re.compile(r"[-_A-Za-z0-9]{32,}")
_QUANTITIES = {
    "cpu": parse_cpu,
    "memory": parse_bytes,
    "gpu": parse_gpu,
    "disk": parse_bytes,
    "shared_memory": parse_bytes,
}


@dataclass(frozen=True)
class KubernetesAppSpec:
    """One version of one app, as the Kubernetes runtime sees it. Dicts are never mutated."""

    name: str
    version: str
    image: str
    port: int
    namespace: str = "default"
    commands: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    """Kubernetes Secrets in `namespace`; each one's keys become environment variables."""
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None
    disk: str | None = None
    shared_memory: str | None = None
    min_replicas: int = 1
    max_replicas: int = 1
    rpm: int | None = None
    auth_type: AuthType = "Browser"
    """Always enforced on the app's Ingress; there is no Ingress without auth."""
    public: bool = False
    """Whether the app is reachable from outside the cluster (an Ingress) at all."""
    api_token: str | None = None
    """The token `DeployedApp.auth()` hands out, checked by the Ingress: required when
    `exposure` is API or BrowserAndApi, and rendered only then."""
    code_url: str | None = None
    code_key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    """Tags, project and branch, already turned into valid label keys and values."""

    def __post_init__(self) -> None:
        _check_names(self)
        _check_quantities(self)
        _check_replicas(self)
        _check_auth(self)
        if (self.code_url is None) != (self.code_key is None):
            raise KubernetesSpecError("code_url and code_key go together: give both or neither")
        if self.code_url is not None and (problem := unreachable_code(self.code_url)):
            raise KubernetesSpecError(problem)

    @property
    def exposure(self) -> Literal["internal", "Browser", "API", "BrowserAndApi"]:
        """How the app is reached from outside the cluster: not at all (`internal`) unless
        `public`, and then always through its auth type. As in the reference API, `public`
        decides whether there is a public URL and `auth_type` what it checks; the in-cluster
        URL (the Service) checks nothing."""
        return self.auth_type if self.public else "internal"

    @property
    def checks_token(self) -> bool:
        """Whether the app's Ingress, if it has one, checks the API token."""
        return self.exposure in TOKEN_AUTH_TYPES

    @property
    def autoscaled(self) -> bool:
        return self.min_replicas != self.max_replicas


def unreachable_code(url: str) -> str | None:
    """Why pods cannot fetch the code package at `url`, or None: only object storage works."""
    if url.startswith("s3://"):
        return None
    return (
        f"code package {url} is not in object storage that pods can reach: "
        "set BAKERY_CODE_STORE to an s3:// URL and package the code again"
    )


@dataclass(frozen=True)
class ClusterSettings:
    """Facts about the cluster that are the same for every app deployed to it."""

    domain: str | None = None
    """Apps are served at `<name>.<namespace>.<domain>`; needed for any app with an Ingress."""
    tls_secret: str | None = None
    """A certificate Secret (e.g. a `*.<namespace>.<domain>` wildcard); https when set."""
    fetcher_image: str = DEFAULT_FETCHER_IMAGE
    fetcher_secrets: tuple[str, ...] = ()
    """Secrets with the object store's credentials and endpoint for the code fetcher."""
    browser_auth_url: str | None = None
    browser_auth_signin: str | None = None
    """ingress-nginx external auth (e.g. oauth2-proxy) for `Browser` and `BrowserAndApi` auth."""
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    """Where KEDA reads ingress-nginx's request counters for rpm scaling."""
    namespace: str = "default"
    """Where the deployer puts apps (and looks for their Secrets)."""


def _check_names(spec: KubernetesAppSpec) -> None:
    if not is_app_name(spec.name):
        raise KubernetesSpecError(
            f"app name {spec.name!r} is not a valid Kubernetes name: use at most 63 lowercase "
            "letters, digits and '-', starting with a letter"
        )
    if not is_app_name(spec.namespace):
        raise KubernetesSpecError(f"namespace {spec.namespace!r} is not a valid namespace name")
    if not spec.version or not is_label_value(spec.version):
        raise KubernetesSpecError(f"version {spec.version!r} is not a valid label value")
    if not spec.image.strip():
        raise KubernetesSpecError("image is empty: give the image to run (e.g. bake_image's)")
    if not 1 <= spec.port <= 65535:
        raise KubernetesSpecError(f"port {spec.port} is not between 1 and 65535")
    for secret in spec.secrets:
        if not is_secret_name(secret):
            raise KubernetesSpecError(f"secret name {secret!r} is not a valid Secret name")
    for key in spec.environment:
        if not is_env_name(key):
            raise KubernetesSpecError(f"environment variable name {key!r} is not valid")
    if "PORT" in spec.environment:
        raise KubernetesSpecError("environment sets PORT, which the runtime sets from `port`")
    for key, value in spec.labels.items():
        if key in RENDERER_LABELS or not is_label_key(key) or not is_label_value(value):
            raise KubernetesSpecError(f"label {key}={value!r} is reserved or not a valid label")


def _check_quantities(spec: KubernetesAppSpec) -> None:
    for what, parse in _QUANTITIES.items():
        quantity = getattr(spec, what)
        if quantity is None:
            continue
        try:
            amount = parse(quantity, f"resources.{what}")
        except AppConfigError as error:
            raise KubernetesSpecError(error.message) from None
        if amount.value == 0:  # only a GPU count parses as zero
            raise KubernetesSpecError(
                f"resources.{what} {quantity!r} must be more than zero; leave it out for none"
            )


def _check_replicas(spec: KubernetesAppSpec) -> None:
    if not 0 <= spec.min_replicas <= spec.max_replicas or spec.max_replicas < 1:
        raise KubernetesSpecError(
            f"replicas min={spec.min_replicas} max={spec.max_replicas}: need 0 <= min <= max "
            "and max >= 1"
        )
    if spec.rpm is not None and spec.rpm < 1:
        raise KubernetesSpecError(f"scaling_policy.rpm {spec.rpm} must be at least 1")


def _check_auth(spec: KubernetesAppSpec) -> None:
    if spec.auth_type not in AUTH_TYPES:
        raise KubernetesSpecError(
            f"auth type {spec.auth_type!r} is not one of {', '.join(AUTH_TYPES)}"
        )
    if spec.checks_token and not _TOKEN.fullmatch(spec.api_token or ""):
        raise KubernetesSpecError(
            f"a public {spec.auth_type}-auth app needs api_token: at least 32 URL-safe "
            "characters, e.g. secrets.token_urlsafe(32)"
        )
