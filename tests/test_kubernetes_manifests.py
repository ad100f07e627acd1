"""Kubernetes manifests for every option, each validated against the official client's models."""

import base64
import copy
import hashlib
import itertools
import json
from dataclasses import replace
from typing import Any

import pytest

from deployer.runtimes.kubernetes import (
    ClusterSettings,
    InvalidManifest,
    KubernetesAppSpec,
    KubernetesSpecError,
    api_auth_headers,
    internal_url,
    public_url,
    render,
)
from deployer.runtimes.kubernetes.validate import validate

TOKEN = "t0k3n-" + "a" * 40
KEY = "5c1e0b2a9d8f7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817061234"
URL = f"s3://bakery-code/packages/5c/{KEY}.tar.gz"
CLUSTER = ClusterSettings(
    domain="apps.example.com",
    fetcher_image="registry.example.com/bakery:0.1.0",
    fetcher_secrets=("bakery-code-store",),
    browser_auth_url="https://oauth2.example.com/oauth2/auth",
    browser_auth_signin="https://oauth2.example.com/oauth2/start?rd=$escaped_request_uri",
)
FULL_RESOURCES = {
    "cpu": "500m",
    "memory": "2048Mi",
    "gpu": "1",
    "disk": "10Gi",
    "shared_memory": "1Gi",
}


def make_spec(**overrides: Any) -> KubernetesAppSpec:
    fields: dict[str, Any] = {
        "name": "web",
        "version": "v2",
        "namespace": "apps",
        "image": "registry.example.com/apps/web:spec-3f9a2c",
        "port": 8000,
        "commands": ("python -m pip list", "python server.py"),
        "environment": {"LOG_LEVEL": "info", "DEBUG": "false"},
        "secrets": ("my-api-keys", "db-credentials"),
        "code_url": URL,
        "code_key": KEY,
        "labels": {"project": "recs", "branch": "main", "env": "prod"},
    }
    fields.update(overrides)
    return KubernetesAppSpec(**fields)


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = {manifest["kind"]: manifest for manifest in manifests}
    assert len(kinds) == len(manifests), "one object per kind"
    return kinds


def pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]


# --- every combination --------------------------------------------------------------------

AUTH_TYPES = ("Browser", "API", "BrowserAndApi")
TOKEN_AUTH = ("API", "BrowserAndApi")
NGINX = "nginx.ingress.kubernetes.io/"
BASIC_AUTH = {
    f"{NGINX}auth-realm": "bakery app web",
    f"{NGINX}auth-secret": "web-api-auth",
    f"{NGINX}auth-type": "basic",
}
EXTERNAL_AUTH = {
    f"{NGINX}auth-signin": CLUSTER.browser_auth_signin,
    f"{NGINX}auth-url": CLUSTER.browser_auth_url,
}
ANNOTATIONS = {
    "Browser": EXTERNAL_AUTH,
    "API": BASIC_AUTH,
    "BrowserAndApi": {**BASIC_AUTH, **EXTERNAL_AUTH, f"{NGINX}satisfy": "any"},
}
"""What the Ingress of a public app checks, by auth type: never nothing."""
REPLICAS = {
    "fixed": {"min_replicas": 2, "max_replicas": 2},
    "autoscaled": {"min_replicas": 1, "max_replicas": 3, "rpm": 120},
    "to-zero": {"min_replicas": 0, "max_replicas": 3},
}
RESOURCES = {"none": {}, "full": FULL_RESOURCES}
CODE = {"code": {}, "no-code": {"code_url": None, "code_key": None}}


def auth(auth_type: str, public: bool) -> dict[str, Any]:
    """Spec fields for an auth type; token types get a token even when not public, so the
    tests show the renderer itself leaves it out without an Ingress that checks it."""
    token = {"api_token": TOKEN} if auth_type in TOKEN_AUTH else {}
    return {"auth_type": auth_type, "public": public, **token}


def expected(
    auth_type: str, public: bool, replicas: str, keda: bool, ingress_class: str | None
) -> set[str] | str:
    """The kinds rendered, or the start of the KubernetesSpecError message: the rules, restated."""
    exposed = ingress_class is not None and public
    kinds = {"Deployment", "Service"}
    if exposed:
        kinds.add("Ingress")
    if exposed and auth_type in TOKEN_AUTH:
        kinds.add("Secret")
    if replicas != "fixed":
        if keda and not exposed:
            return "scales on requests per minute"
        if not keda and replicas == "to-zero":
            return "asks for min 0 replicas"
        kinds.add("ScaledObject" if keda else "HorizontalPodAutoscaler")
    return kinds


COMBINATIONS = list(
    itertools.product(
        AUTH_TYPES, [True, False], REPLICAS, [False, True], [None, "nginx"], RESOURCES, CODE
    )
)


@pytest.mark.parametrize(
    ("auth_type", "public", "replicas", "keda", "ingress_class", "resources", "code"),
    COMBINATIONS,
    ids=[
        f"{a}-{'public' if p else 'private'}-{r}-{'keda' if k else 'no-keda'}-{i}-{res}-{c}"
        for a, p, r, k, i, res, c in COMBINATIONS
    ],
)
def test_every_option_combination_renders_valid_manifests(
    auth_type: str,
    public: bool,
    replicas: str,
    keda: bool,
    ingress_class: str | None,
    resources: str,
    code: str,
) -> None:
    spec = make_spec(
        **auth(auth_type, public), **REPLICAS[replicas], **RESOURCES[resources], **CODE[code]
    )
    assert spec.exposure == (auth_type if public else "internal")
    outcome = expected(auth_type, public, replicas, keda, ingress_class)
    if replicas == "autoscaled" and not keda and resources == "none" and isinstance(outcome, set):
        outcome = "autoscales, and without KEDA"
    if isinstance(outcome, str):
        with pytest.raises(KubernetesSpecError, match=outcome):
            render(spec, keda_installed=keda, ingress_class=ingress_class, cluster=CLUSTER)
        return
    manifests = render(spec, keda_installed=keda, ingress_class=ingress_class, cluster=CLUSTER)
    kinds = by_kind(manifests)
    assert set(kinds) == outcome
    if "Ingress" in kinds:
        assert kinds["Ingress"]["metadata"]["annotations"] == ANNOTATIONS[auth_type]
    url = public_url(spec, ingress_class=ingress_class, cluster=CLUSTER)
    assert url == ("http://web.apps.apps.example.com/" if "Ingress" in kinds else None)
    for manifest in manifests:
        validate(manifest)  # render validated already; this checks the returned (sorted) copies
        assert manifest["metadata"]["namespace"] == "apps"
        assert manifest["metadata"]["labels"]["bakery.dev/version"] == "v2"
        assert manifest["metadata"]["labels"]["app.kubernetes.io/name"] == "web"
    assert json.dumps(manifests) == json.dumps(manifests, sort_keys=True)


# --- the Deployment -----------------------------------------------------------------------


def test_deployment_runs_commands_with_environment_secrets_and_probe() -> None:
    manifests = render(make_spec(), keda_installed=False, ingress_class=None, cluster=CLUSTER)
    deployment = by_kind(manifests)["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "bakery",
        "app.kubernetes.io/name": "web",
    }
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["bakery.dev/version"] == "v2"
    assert labels["project"] == "recs"
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    assert app["command"] == ["/bin/sh", "-c", "python -m pip list && python server.py"]
    assert app["env"] == [
        {"name": "PORT", "value": "8000"},
        {"name": "DEBUG", "value": "false"},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    assert app["envFrom"] == [
        {"secretRef": {"name": "my-api-keys"}},
        {"secretRef": {"name": "db-credentials"}},
    ]
    assert app["ports"] == [{"containerPort": 8000, "name": "http", "protocol": "TCP"}]
    assert app["readinessProbe"]["tcpSocket"] == {"port": "http"}
    assert "resources" not in app


def test_no_commands_keeps_the_image_entrypoint() -> None:
    spec = make_spec(commands=(), secrets=())
    (app,) = pod_spec(render(spec, keda_installed=False, ingress_class=None))["containers"]
    assert "command" not in app
    assert "envFrom" not in app


def test_resources_gpu_disk_and_shared_memory() -> None:
    spec = make_spec(**FULL_RESOURCES)
    pod = pod_spec(render(spec, keda_installed=False, ingress_class=None, cluster=CLUSTER))
    (app,) = pod["containers"]
    assert app["resources"] == {
        "limits": {"ephemeral-storage": "10Gi", "memory": "2048Mi", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "500m", "ephemeral-storage": "10Gi", "memory": "2048Mi"},
    }
    assert {"mountPath": "/dev/shm", "name": "dshm"} in app["volumeMounts"]
    assert {"emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}, "name": "dshm"} in pod["volumes"]


def test_init_container_fetches_the_code_package_into_the_working_directory() -> None:
    pod = pod_spec(render(make_spec(), keda_installed=False, ingress_class=None, cluster=CLUSTER))
    (fetch,) = pod["initContainers"]
    assert fetch["image"] == "registry.example.com/bakery:0.1.0"
    assert fetch["command"] == ["bakery", "fetch", URL, "/workspace/code", "--key", KEY]
    assert fetch["envFrom"] == [{"secretRef": {"name": "bakery-code-store"}}]
    assert fetch["volumeMounts"] == [{"mountPath": "/workspace", "name": "workspace"}]
    (app,) = pod["containers"]
    assert app["workingDir"] == "/workspace/code"
    assert app["volumeMounts"] == [{"mountPath": "/workspace", "name": "workspace"}]
    assert pod["volumes"] == [{"emptyDir": {}, "name": "workspace"}]


def test_no_code_package_means_no_init_container() -> None:
    spec = make_spec(code_url=None, code_key=None)
    pod = pod_spec(render(spec, keda_installed=False, ingress_class=None))
    assert "initContainers" not in pod
    assert "volumes" not in pod
    assert "workingDir" not in pod["containers"][0]


# --- Service, Ingress and auth ------------------------------------------------------------


def test_service_fronts_the_named_port() -> None:
    service = by_kind(render(make_spec(), keda_installed=False, ingress_class=None))["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}
    ]
    assert internal_url(make_spec()) == "http://web.apps.svc.cluster.local/"


def test_public_app_gets_an_ingress_with_its_auth_and_tls_when_configured() -> None:
    spec = make_spec(public=True)  # Browser auth, as AppConfig's default
    cluster = replace(CLUSTER, tls_secret="wildcard-apps")
    ingress = by_kind(render(spec, keda_installed=False, ingress_class="nginx", cluster=cluster))[
        "Ingress"
    ]
    assert ingress["metadata"]["annotations"] == EXTERNAL_AUTH
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "web.apps.apps.example.com"
    (path,) = rule["http"]["paths"]
    assert path["backend"] == {"service": {"name": "web", "port": {"name": "http"}}}
    assert ingress["spec"]["tls"] == [
        {"hosts": ["web.apps.apps.example.com"], "secretName": "wildcard-apps"}
    ]
    assert (
        public_url(spec, ingress_class="nginx", cluster=cluster)
        == "https://web.apps.apps.example.com/"
    )
    assert public_url(spec, ingress_class=None, cluster=cluster) is None


@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_a_non_public_app_is_reachable_only_in_the_cluster_without_auth(auth_type: str) -> None:
    """No Ingress, so nothing to check a token or a login: no Secret, and no browser login or
    domain needed from the cluster. The Service's in-cluster URL needs no auth."""
    spec = make_spec(**auth(auth_type, public=False))
    assert spec.exposure == "internal"
    bare = ClusterSettings()  # no domain, no browser login
    kinds = by_kind(render(spec, keda_installed=True, ingress_class="nginx", cluster=bare))
    assert set(kinds) == {"Deployment", "Service"}
    assert public_url(spec, ingress_class="nginx", cluster=bare) is None
    assert internal_url(spec) == "http://web.apps.svc.cluster.local/"


def test_a_non_public_token_app_needs_no_token() -> None:
    for auth_type in TOKEN_AUTH:
        spec = make_spec(auth_type=auth_type, public=False)
        assert spec.api_token is None
        assert "Secret" not in by_kind(
            render(spec, keda_installed=False, ingress_class="nginx", cluster=CLUSTER)
        )


def test_api_auth_is_basic_auth_checked_by_ingress_nginx_against_the_token() -> None:
    spec = make_spec(auth_type="API", public=True, api_token=TOKEN)
    kinds = by_kind(render(spec, keda_installed=False, ingress_class="nginx", cluster=CLUSTER))
    annotations = kinds["Ingress"]["metadata"]["annotations"]
    assert annotations == {
        "nginx.ingress.kubernetes.io/auth-realm": "bakery app web",
        "nginx.ingress.kubernetes.io/auth-secret": "web-api-auth",
        "nginx.ingress.kubernetes.io/auth-type": "basic",
    }
    secret = kinds["Secret"]
    assert secret["metadata"]["name"] == "web-api-auth"
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    # What nginx does with an `{SSHA}` line: sha1(password + salt) == digest.
    user, _, hashed = base64.b64decode(secret["data"]["auth"]).decode().strip().partition(":")
    raw = base64.b64decode(hashed.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    header = api_auth_headers(TOKEN)["Authorization"]
    sent_user, _, sent_password = (
        base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    )
    assert sent_user == user
    assert hashlib.sha1(sent_password.encode() + salt).digest() == digest
    assert hashlib.sha1(b"wrong" + salt).digest() != digest


def test_browser_auth_uses_external_auth_and_is_refused_when_unconfigured() -> None:
    spec = make_spec(auth_type="Browser", public=True)
    ingress = by_kind(render(spec, keda_installed=False, ingress_class="nginx", cluster=CLUSTER))[
        "Ingress"
    ]
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/auth-signin": CLUSTER.browser_auth_signin,
        "nginx.ingress.kubernetes.io/auth-url": CLUSTER.browser_auth_url,
    }
    with pytest.raises(KubernetesSpecError, match="Browser auth, but this cluster has no browser"):
        render(spec, keda_installed=False, ingress_class="nginx", cluster=ClusterSettings("x.io"))


def test_browser_and_api_auth_lets_either_the_login_or_the_token_in() -> None:
    """ingress-nginx puts auth_request (login), auth_basic (token) and `satisfy any` in one
    location, so one Ingress serves both kinds of client."""
    spec = make_spec(auth_type="BrowserAndApi", public=True, api_token=TOKEN)
    kinds = by_kind(render(spec, keda_installed=False, ingress_class="nginx", cluster=CLUSTER))
    assert kinds["Ingress"]["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/auth-realm": "bakery app web",
        "nginx.ingress.kubernetes.io/auth-secret": "web-api-auth",
        "nginx.ingress.kubernetes.io/auth-signin": CLUSTER.browser_auth_signin,
        "nginx.ingress.kubernetes.io/auth-type": "basic",
        "nginx.ingress.kubernetes.io/auth-url": CLUSTER.browser_auth_url,
        "nginx.ingress.kubernetes.io/satisfy": "any",
    }
    assert base64.b64decode(kinds["Secret"]["data"]["token"]).decode() == TOKEN
    with pytest.raises(KubernetesSpecError, match="BrowserAndApi auth, but this cluster has no"):
        render(spec, keda_installed=False, ingress_class="nginx", cluster=ClusterSettings("x.io"))


def test_public_app_needs_a_domain() -> None:
    with pytest.raises(KubernetesSpecError, match="needs a domain"):
        render(make_spec(public=True), keda_installed=False, ingress_class="nginx")


# --- autoscaling --------------------------------------------------------------------------


def test_hpa_without_keda_scales_on_cpu_and_leaves_replicas_to_it() -> None:
    spec = make_spec(min_replicas=1, max_replicas=4, cpu="1")
    kinds = by_kind(render(spec, keda_installed=False, ingress_class=None))
    assert "replicas" not in kinds["Deployment"]["spec"]
    hpa = kinds["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_keda_scaled_object_counts_requests_per_minute_and_scales_to_zero() -> None:
    spec = make_spec(public=True, min_replicas=0, max_replicas=5)
    kinds = by_kind(render(spec, keda_installed=True, ingress_class="nginx", cluster=CLUSTER))
    assert "HorizontalPodAutoscaler" not in kinds
    assert "replicas" not in kinds["Deployment"]["spec"]
    scaled = kinds["ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["maxReplicaCount"] == 5
    assert scaled["spec"]["scaleTargetRef"]["name"] == "web"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["threshold"] == "60"  # the reference's default rpm
    assert 'ingress="web"' in trigger["metadata"]["query"]
    assert 'namespace="apps"' in trigger["metadata"]["query"]
    assert trigger["metadata"]["serverAddress"] == CLUSTER.prometheus_url


def test_fixed_replicas_have_no_autoscaler_even_with_keda() -> None:
    spec = make_spec(public=True, min_replicas=3, max_replicas=3, rpm=100)
    kinds = by_kind(render(spec, keda_installed=True, ingress_class="nginx", cluster=CLUSTER))
    assert set(kinds) == {"Deployment", "Service", "Ingress"}
    assert kinds["Deployment"]["spec"]["replicas"] == 3


# --- determinism and validation -----------------------------------------------------------


def test_rendering_is_deterministic() -> None:
    spec = make_spec(
        auth_type="BrowserAndApi", public=True, api_token=TOKEN, min_replicas=0, max_replicas=2
    )
    first = render(spec, keda_installed=True, ingress_class="nginx", cluster=CLUSTER)
    reordered = replace(spec, environment=dict(reversed(spec.environment.items())))
    second = render(reordered, keda_installed=True, ingress_class="nginx", cluster=CLUSTER)
    assert json.dumps(first) == json.dumps(second)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(bogus=1), "bogus"),
        (lambda d: d["spec"].update(replicas="3"), "replicas"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
            r"containers\.0\.name",
        ),
        (lambda d: d["spec"]["template"]["spec"].update(initContainer=[]), "initContainer"),
    ],
    ids=["unknown-field", "wrong-type", "missing-required", "misspelt-field"],
)
def test_validation_fails_loudly(mutate: Any, message: str) -> None:
    deployment = by_kind(render(make_spec(), keda_installed=False, ingress_class=None))[
        "Deployment"
    ]
    broken = copy.deepcopy(deployment)
    mutate(broken)
    with pytest.raises(InvalidManifest, match=message):
        validate(broken)


def test_custom_resources_have_their_metadata_checked() -> None:
    with pytest.raises(InvalidManifest):
        validate({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"x": 1}})


# --- spec checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Web_App"}, "not a valid Kubernetes name"),
        ({"name": "a" * 64}, "not a valid Kubernetes name"),
        ({"port": 0}, "port 0"),
        ({"image": " "}, "image is empty"),
        ({"cpu": "lots"}, "not a CPU quantity"),
        ({"memory": "0"}, "more than zero"),
        ({"gpu": "0.5"}, "whole devices"),
        ({"gpu": "0"}, "more than zero"),
        ({"environment": {"PORT": "1"}}, "PORT"),
        ({"environment": {"BAD=NAME": "1"}}, "not valid"),
        ({"secrets": ("Bad_Secret",)}, "not a valid Secret name"),
        ({"code_url": "file:///tmp/code/ab/ab.tar.gz"}, "pods can reach"),
        ({"code_key": None}, "go together"),
        ({"auth_type": "API", "public": True}, "public API-auth app needs api_token"),
        ({"auth_type": "API", "public": True, "api_token": "short"}, "api_token"),
        ({"auth_type": "BrowserAndApi", "public": True}, "BrowserAndApi-auth app needs api_token"),
        ({"auth_type": "Basic"}, "not one of Browser, API, BrowserAndApi"),
        ({"auth_type": None, "public": True}, "not one of"),  # no Ingress without auth
        ({"min_replicas": 3, "max_replicas": 2}, "min <= max"),
        ({"min_replicas": 0, "max_replicas": 0}, "max >= 1"),
        ({"rpm": 0}, "rpm"),
        ({"labels": {"app.kubernetes.io/name": "x"}}, "reserved"),
        ({"labels": {"env": "has space"}}, "not a valid label"),
        ({"version": ""}, "version"),
    ],
)
def test_spec_refuses_what_kubernetes_would_reject(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(KubernetesSpecError, match=message):
        make_spec(**overrides)


def test_autoscaling_without_keda_needs_cpu() -> None:
    spec = make_spec(min_replicas=1, max_replicas=2)
    with pytest.raises(KubernetesSpecError, match=r"resources\.cpu"):
        render(spec, keda_installed=False, ingress_class=None)
