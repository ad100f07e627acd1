"""How an app is reached: a Service inside the cluster, an Ingress (with auth) from outside.

Only a public app gets an Ingress, and its auth type is always enforced there, as on the
local runtimes; a non-public app is reachable inside the cluster only, through its Service,
whose URL needs no auth (as in the reference API). Auth is enforced by ingress-nginx, not by
code of ours: an API-auth app gets HTTP basic auth against a Secret holding a salted-SHA1
htpasswd line of a random token (nginx's `{SSHA}` scheme; a 256-bit token makes the fast hash
safe), `Browser` auth is ingress-nginx's external auth (e.g. oauth2-proxy), and
`BrowserAndApi` is both on the one Ingress with `satisfy: any` (nginx lets a request in when
either check passes; one that passes neither is sent to the login). Other controllers ignore
these annotations, so auth needs an ingress-nginx class.
"""

import base64
from collections.abc import Mapping
from typing import Any

from deployer.host.auth import htpasswd_line
from deployer.runtimes.kubernetes.errors import KubernetesSpecError
from deployer.runtimes.kubernetes.labels import selector_labels
from deployer.runtimes.kubernetes.spec import ClusterSettings, KubernetesAppSpec
from deployer.runtimes.kubernetes.workload import PORT_NAME, metadata

NGINX = "nginx.ingress.kubernetes.io/"


def auth_secret_name(name: str) -> str:
    return f"{name}-api-auth"


def host(spec: KubernetesAppSpec, cluster: ClusterSettings) -> str:
    if cluster.domain is None:
        raise KubernetesSpecError(
            f"app {spec.name} is public ({spec.exposure} auth at its Ingress), which needs a "
            "domain for its host name: set the cluster's domain, or make the app non-public "
            "(auth.public=False) to keep it inside the cluster"
        )
    return f"{spec.name}.{spec.namespace}.{cluster.domain}"


def exposed(spec: KubernetesAppSpec, ingress_class: str | None) -> bool:
    """Whether the app gets an Ingress: it is public and the cluster has an ingress class."""
    return ingress_class is not None and spec.exposure != "internal"


def public_url(
    spec: KubernetesAppSpec, *, ingress_class: str | None, cluster: ClusterSettings
) -> str | None:
    """The Ingress URL, or None for an app without one (reach it at `internal_url`)."""
    if not exposed(spec, ingress_class):
        return None
    scheme = "https" if cluster.tls_secret else "http"
    return f"{scheme}://{host(spec, cluster)}/"


def ingress_url(ingress: Mapping[str, Any]) -> str:
    """The URL an applied Ingress serves, read back from it: what `public_url` promised."""
    spec = ingress["spec"]
    scheme = "https" if spec.get("tls") else "http"
    return f"{scheme}://{spec['rules'][0]['host']}/"


def internal_url(spec: KubernetesAppSpec) -> str:
    return service_url(spec.name, spec.namespace)


def service_url(name: str, namespace: str) -> str:
    """The in-cluster URL of app `name`'s Service: stable across pods and versions."""
    return f"http://{name}.{namespace}.svc.cluster.local/"


def service(spec: KubernetesAppSpec) -> dict[str, Any]:
    """Port 80 to the named container port; it spans versions, so a rollout keeps serving."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec),
        "spec": {
            "ports": [{"name": PORT_NAME, "port": 80, "protocol": "TCP", "targetPort": PORT_NAME}],
            "selector": selector_labels(spec.name),
            "type": "ClusterIP",
        },
    }


def ingress(
    spec: KubernetesAppSpec, ingress_class: str, cluster: ClusterSettings
) -> dict[str, Any]:
    app_host = host(spec, cluster)
    ingress_spec: dict[str, Any] = {
        "ingressClassName": ingress_class,
        "rules": [
            {
                "host": app_host,
                "http": {
                    "paths": [
                        {
                            "backend": {
                                "service": {"name": spec.name, "port": {"name": PORT_NAME}}
                            },
                            "path": "/",
                            "pathType": "Prefix",
                        }
                    ]
                },
            }
        ],
    }
    if cluster.tls_secret:
        ingress_spec["tls"] = [{"hosts": [app_host], "secretName": cluster.tls_secret}]
    meta = metadata(spec)
    meta["annotations"] = _auth_annotations(spec, cluster)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": ingress_spec,
    }


def auth_secret(spec: KubernetesAppSpec, token: str) -> dict[str, Any]:
    """The htpasswd line ingress-nginx checks, and the token itself for `auth()` to read back.

    The salt is derived from the app's identity, so re-rendering is byte-for-byte stable.
    """
    line = htpasswd_line(token, salt_from=f"{spec.namespace}/{spec.name}")
    return {
        "apiVersion": "v1",
        "data": {"auth": _b64(line), "token": _b64(token)},
        "kind": "Secret",
        "metadata": metadata(spec, auth_secret_name(spec.name)),
        "type": "Opaque",
    }


def _auth_annotations(spec: KubernetesAppSpec, cluster: ClusterSettings) -> dict[str, str]:
    """The auth type's checks; never none, since a public app always has an auth type."""
    if spec.exposure == "API":
        return _basic_auth(spec)
    if spec.exposure == "Browser":
        return _external_auth(spec, cluster)
    if spec.exposure == "BrowserAndApi":
        return {**_basic_auth(spec), **_external_auth(spec, cluster), f"{NGINX}satisfy": "any"}
    raise KubernetesSpecError(f"app {spec.name} is not public, so it has no Ingress")


def _basic_auth(spec: KubernetesAppSpec) -> dict[str, str]:
    return {
        f"{NGINX}auth-realm": f"bakery app {spec.name}",
        f"{NGINX}auth-secret": auth_secret_name(spec.name),
        f"{NGINX}auth-type": "basic",
    }


def _external_auth(spec: KubernetesAppSpec, cluster: ClusterSettings) -> dict[str, str]:
    if not (cluster.browser_auth_url and cluster.browser_auth_signin):
        raise KubernetesSpecError(
            f"app {spec.name} asks for {spec.auth_type} auth, but this cluster has no browser "
            "login configured (browser_auth_url and browser_auth_signin, e.g. oauth2-proxy): "
            "use auth type API, or make the app non-public (auth.public=False) to keep it "
            "inside the cluster"
        )
    return {
        f"{NGINX}auth-signin": cluster.browser_auth_signin,
        f"{NGINX}auth-url": cluster.browser_auth_url,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
