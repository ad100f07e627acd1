"""AppConfig → KubernetesAppSpec → render(): every parameter carried over, or refused by name."""

import base64
import dataclasses
from typing import Any

import pytest
from kubernetes.utils import parse_quantity

from deployer.exceptions import AppConfigError
from deployer.host.auth import new_token
from deployer.model.config import AppConfig
from deployer.model.quantities import parse_bytes, parse_cpu, parse_gpu
from deployer.orchestration.records import AppRecord
from deployer.runtimes.kubernetes import (
    ClusterSettings,
    KubernetesAppSpec,
    ingress_url,
    public_url,
    render,
    to_kubernetes_spec,
    unsupported,
)
from packager import CodePackagingException, PackagedCode

KEY = "5c1e0b2a9d8f7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817061234"
PKG = PackagedCode(f"s3://bakery-code/packages/5c/{KEY}.tar.gz", KEY)
TOKEN = new_token()
CLUSTER = ClusterSettings(
    domain="apps.example.com",
    fetcher_image="registry.example.com/bakery:0.1.0",
    browser_auth_url="https://oauth2.example.com/oauth2/auth",
    browser_auth_signin="https://oauth2.example.com/oauth2/start",
    namespace="apps",
)
BASE: dict[str, Any] = {
    "name": "web",
    "port": 8000,
    "image": "registry.example.com/web:1",
    "commands": ["python server.py"],
    "code_package": PKG,
}
BASE_SPEC = KubernetesAppSpec(
    name="web",
    version="v1",
    image="registry.example.com/web:1",
    port=8000,
    namespace="apps",
    commands=("python server.py",),
    auth_type="Browser",
    public=True,
    code_url=PKG.url,
    code_key=KEY,
)


def record(token: str | None = TOKEN) -> AppRecord:
    app = AppRecord.new("web", "kubernetes")
    app.api_token = token
    return app


def config(**overrides: Any) -> AppConfig:
    return AppConfig.from_kwargs(**{**BASE, **overrides})


def spec_of(app: AppConfig, token: str | None = TOKEN) -> KubernetesAppSpec:
    return to_kubernetes_spec(app, "v1", record(token), CLUSTER)


# --- every parameter ------------------------------------------------------------------------

# (parameters given, the spec fields they change from BASE_SPEC)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "port": ({"port": 9000}, {"port": 9000}),
    "image": (
        {"image": "ghcr.io/acme/web@sha256:" + "a" * 64},
        {"image": "ghcr.io/acme/web@sha256:" + "a" * 64},
    ),
    "commands": (
        {"commands": ["pip list", "python server.py"]},
        {"commands": ("pip list", "python server.py")},
    ),
    "no-commands": ({"commands": []}, {"commands": ()}),
    "environment": (
        {"environment": {"DEBUG": "false", "PORT": "8000"}},
        {"environment": {"DEBUG": "false"}},  # PORT equals port; the renderer sets it
    ),
    "secrets": ({"secrets": ["my-api-keys", "db.creds"]}, {"secrets": ("my-api-keys", "db.creds")}),
    "cpu": ({"resources": {"cpu": "500m"}}, {"cpu": "500m"}),
    "cpu-cores": ({"resources": {"cpu": 0.5}}, {"cpu": "0.5"}),
    "memory": ({"resources": {"memory": "2048Mi"}}, {"memory": "2048Mi"}),
    "gpu": ({"resources": {"gpu": "1"}}, {"gpu": "1"}),
    "gpu-zero": ({"resources": {"gpu": "0"}}, {}),  # no GPU asked for: no GPU limit
    "disk": ({"resources": {"disk": "10Gi"}}, {"disk": "10Gi"}),
    "shared-memory": ({"resources": {"shared_memory": "1Gi"}}, {"shared_memory": "1Gi"}),
    "fixed-replicas": ({"replicas": {"fixed": 3}}, {"min_replicas": 3, "max_replicas": 3}),
    "autoscaled": (
        {"replicas": {"min": 1, "max": 4, "scaling_policy": {"rpm": 120}}},
        {"min_replicas": 1, "max_replicas": 4, "rpm": 120},
    ),
    "scale-to-zero": (
        {"replicas": {"min": 0, "max": 2}},
        {"min_replicas": 0, "max_replicas": 2, "rpm": 60},
    ),
    # every auth.type and auth.public: the type is always what a public app's Ingress checks; the
    # token reaches the spec (and so a Secret) only for a public API or BrowserAndApi app.
    "browser-public": ({"auth": {"type": "Browser", "public": True}}, {}),
    "browser-private": ({"auth": {"type": "Browser", "public": False}}, {"public": False}),
    "api-public": ({"auth": {"type": "API"}}, {"auth_type": "API", "api_token": TOKEN}),
    "api-private": (
        {"auth": {"type": "API", "public": False}},
        {"auth_type": "API", "public": False},
    ),
    "browser-and-api-public": (
        {"auth": {"type": "BrowserAndApi"}},
        {"auth_type": "BrowserAndApi", "api_token": TOKEN},
    ),
    "browser-and-api-private": (
        {"auth": {"type": "BrowserAndApi", "public": False}},
        {"auth_type": "BrowserAndApi", "public": False},
    ),
    "tags": (
        {"tags": [{"env": "prod"}, {"example.com/team": "ml"}]},
        {"labels": {"env": "prod", "example.com/team": "ml"}},
    ),
    "project": ({"project": "recs"}, {"labels": {"bakery.dev/project": "recs"}}),
    "branch": ({"branch": "feature.x-1"}, {"labels": {"bakery.dev/branch": "feature.x-1"}}),
    # Descriptive, or the deployer's own business: nothing reaches the cluster.
    "description": ({"description": "demo"}, {}),
    "app-type": ({"app_type": "flask"}, {}),
    "static-url": ({"generate_static_url": True}, {}),  # hosts are static: <name>.<ns>.<domain>
    "force-upgrade": ({"force_upgrade": True}, {}),
    "depends-on": ({"depends_on": ["backend"]}, {}),
}

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "no-image": ({"image": None}, "image: "),
    "compute-pools": ({"compute_pools": ["gpu-pool"]}, "compute_pools: "),
    "persistence": ({"persistence": "postgres"}, "persistence: "),
    "models": ({"models": [{"name": "bert"}]}, "models: "),
    "data": ({"data": ["s3://bucket/data"]}, "data: "),
    "autoscaled-private": (
        {"replicas": {"min": 1, "max": 3}, "auth": {"type": "API", "public": False}},
        "replicas: min != max scales on requests per minute",
    ),
    "tag-version": ({"tags": [{"bakery.dev/version": "x"}]}, "tags: bakery.dev/version"),
    "tag-name": ({"tags": [{"app.kubernetes.io/name": "x"}]}, "tags: app.kubernetes.io/name"),
    "tag-project": ({"tags": [{"bakery.dev/project": "x"}]}, "tags: bakery.dev/project"),
    "local-code": (
        {"code_package": PackagedCode(f"file:///tmp/code/{KEY}.tar.gz", KEY)},
        "code_package: code package file://",
    ),
}


def test_every_appconfig_parameter_is_mapped_or_refused() -> None:
    """A new AppConfig parameter fails here until it is mapped (CASES) or refused (REFUSED)."""
    given = set(BASE)
    for parameters, _ in [*CASES.values(), *REFUSED.values()]:
        given |= set(parameters)
    assert given == set(AppConfig.model_fields)


@pytest.mark.parametrize("case", sorted(CASES))
def test_parameter_maps_onto_the_spec_and_renders_valid_manifests(case: str) -> None:
    parameters, changes = CASES[case]
    spec = spec_of(config(**parameters))
    assert spec == dataclasses.replace(BASE_SPEC, **changes)
    # render() validates each manifest against the client's models, unknown fields forbidden
    manifests = render(spec, keda_installed=True, ingress_class="nginx", cluster=CLUSTER)
    for manifest in manifests:
        assert manifest["metadata"]["namespace"] == "apps"
        assert manifest["metadata"]["labels"]["bakery.dev/version"] == "v1"
        assert spec.labels.items() <= manifest["metadata"]["labels"].items()


def test_every_parameter_at_once() -> None:
    app = config(
        commands=["pip list", "python server.py"],
        environment={"DEBUG": "false"},
        secrets=["my-api-keys"],
        resources={"cpu": "1", "memory": "2Gi", "gpu": "1", "disk": "10Gi", "shared_memory": "1Gi"},
        replicas={"min": 0, "max": 3},
        auth={"type": "API", "public": True},
        tags=[{"env": "prod"}],
        project="recs",
        branch="main",
        description="demo",
        app_type="flask",
        generate_static_url=True,
    )
    spec = spec_of(app)
    manifests = render(spec, keda_installed=True, ingress_class="nginx", cluster=CLUSTER)
    kinds = {m["kind"]: m for m in manifests}
    assert list(kinds) == ["Secret", "Deployment", "Service", "Ingress", "ScaledObject"]
    pod = kinds["Deployment"]["spec"]["template"]
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "bakery",
        "app.kubernetes.io/name": "web",
        "bakery.dev/branch": "main",
        "bakery.dev/project": "recs",
        "bakery.dev/version": "v1",
        "env": "prod",
    }
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["/bin/sh", "-c", "pip list && python server.py"]
    assert container["env"] == [
        {"name": "PORT", "value": "8000"},
        {"name": "DEBUG", "value": "false"},
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "my-api-keys"}}]
    assert container["resources"] == {
        "limits": {"ephemeral-storage": "10Gi", "memory": "2Gi", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "1", "ephemeral-storage": "10Gi", "memory": "2Gi"},
    }
    (fetch,) = pod["spec"]["initContainers"]
    assert fetch["command"] == ["bakery", "fetch", PKG.url, "/workspace/code", "--key", KEY]
    assert kinds["ScaledObject"]["spec"]["minReplicaCount"] == 0
    assert kinds["Ingress"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-type"] == (
        "basic"
    )


@pytest.mark.parametrize("auth_type", ["API", "BrowserAndApi"])
def test_the_api_token_comes_from_the_record_into_the_auth_secret(auth_type: str) -> None:
    spec = spec_of(config(auth={"type": auth_type}))
    secret = render(spec, keda_installed=False, ingress_class="nginx", cluster=CLUSTER)[0]
    assert secret["kind"] == "Secret"
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN


@pytest.mark.parametrize("auth_type", ["API", "BrowserAndApi"])
def test_a_public_token_app_without_a_token_in_its_record_is_refused(auth_type: str) -> None:
    with pytest.raises(AppConfigError, match="api_token"):
        spec_of(config(auth={"type": auth_type}), token=None)
    # Not public: nothing checks a token, so none is needed.
    assert spec_of(config(auth={"type": auth_type, "public": False}), token=None).api_token is None


@pytest.mark.parametrize(
    ("auth", "kinds", "annotations"),
    [
        ({}, ["Deployment", "Service", "Ingress"], ["auth-signin", "auth-url"]),
        (
            {"type": "API"},
            ["Secret", "Deployment", "Service", "Ingress"],
            ["auth-realm", "auth-secret", "auth-type"],
        ),
        (
            {"type": "BrowserAndApi"},
            ["Secret", "Deployment", "Service", "Ingress"],
            ["auth-realm", "auth-secret", "auth-signin", "auth-type", "auth-url", "satisfy"],
        ),
        ({"public": False}, ["Deployment", "Service"], None),
        ({"type": "API", "public": False}, ["Deployment", "Service"], None),
        ({"type": "BrowserAndApi", "public": False}, ["Deployment", "Service"], None),
    ],
    ids=[
        "default-browser-public",
        "api-public",
        "browser-and-api-public",
        "browser-private",
        "api-private",
        "browser-and-api-private",
    ],
)
def test_auth_type_is_always_enforced_and_public_decides_the_ingress(
    auth: dict[str, Any], kinds: list[str], annotations: list[str] | None
) -> None:
    """The reference API's `{"type": "API"}` example (public by default) is protected."""
    spec = spec_of(config(auth=auth))
    manifests = render(spec, keda_installed=True, ingress_class="nginx", cluster=CLUSTER)
    found = {m["kind"]: m for m in manifests}
    assert list(found) == kinds
    if annotations is None:
        assert public_url(spec, ingress_class="nginx", cluster=CLUSTER) is None
        return
    keys = found["Ingress"]["metadata"]["annotations"]
    assert sorted(key.removeprefix("nginx.ingress.kubernetes.io/") for key in keys) == annotations


def test_the_ingress_url_is_the_public_url_promised() -> None:
    for tls in (None, "wildcard"):
        cluster = dataclasses.replace(CLUSTER, tls_secret=tls)
        spec = to_kubernetes_spec(config(), "v1", record(), cluster)
        manifests = render(spec, keda_installed=False, ingress_class="nginx", cluster=cluster)
        (ingress,) = [m for m in manifests if m["kind"] == "Ingress"]
        assert ingress_url(ingress) == public_url(spec, ingress_class="nginx", cluster=cluster)


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_kubernetes_cannot_honour_is_refused(case: str) -> None:
    parameters, fragment = REFUSED[case]
    app = config(**parameters)
    with pytest.raises(AppConfigError, match="cannot run on Kubernetes") as caught:
        spec_of(app)
    (problem,) = caught.value.problems
    assert problem.startswith(fragment)


def test_every_refusal_is_listed_at_once() -> None:
    merged: dict[str, Any] = {}
    for parameters, _ in REFUSED.values():
        merged.update(parameters)
    merged["tags"] = [{"bakery.dev/version": "x"}, {"app.kubernetes.io/name": "y"}]
    problems = unsupported(config(**merged))
    assert [p.split(":")[0] for p in problems] == [
        "image",
        "compute_pools",
        "persistence",
        "models",
        "data",
        "replicas",
        "tags",
        "code_package",
    ]
    assert "app.kubernetes.io/name, bakery.dev/version" in problems[6]


def test_a_deploy_needs_a_code_package() -> None:
    app = AppConfig.from_kwargs(**{k: v for k, v in BASE.items() if k != "code_package"})
    with pytest.raises(CodePackagingException, match="code_package"):
        spec_of(app)


# --- one quantity parser for the config and the spec ----------------------------------------


@pytest.mark.parametrize(
    ("parse", "text", "scale"),
    [(parse_cpu, text, 1000) for text in ("1", "0.5", ".5", "1.", "250m", "1500m", "64")]
    + [
        (parse_bytes, text, 1)
        for text in ("512Mi", "1.5Gi", "2G", "1000000", "1k", "10Ti", "0.5Ki", "3E")
    ]
    + [(parse_gpu, text, 1) for text in ("1", "8")],
)
def test_config_quantities_mean_the_same_to_the_kubernetes_client(
    parse: Any, text: str, scale: int
) -> None:
    """What `deployer.model.quantities` accepts (config and spec alike), the client reads alike."""
    assert parse(text, "q").value == parse_quantity(text) * scale
