"""`AppConfig` → `KubernetesAppSpec`: where the deployer's parameters meet the renderer.

Everything the renderer can express is carried over; what it cannot is refused with every
problem listed at once, never dropped. `description` and `app_type` only describe the app
(the deployer's record keeps them) and `force_upgrade` / `depends_on` steer the deployer, so
none of them reaches the cluster. `generate_static_url` needs nothing: an app's host is
always `<name>.<namespace>.<domain>`. `auth.type` is always enforced on the public URL and
`auth.public` decides whether there is one (an Ingress), as on the local runtimes.
"""

from collections.abc import Sequence

from deployer.exceptions import AppConfigError
from deployer.model.auth_types import TOKEN_AUTH_TYPES
from deployer.model.config import AppConfig
from deployer.model.images import image_location
from deployer.model.quantities import Quantity
from deployer.orchestration.records import AppRecord
from deployer.runtimes.kubernetes.errors import KubernetesSpecError
from deployer.runtimes.kubernetes.labels import BRANCH_LABEL, PROJECT_LABEL, RENDERER_LABELS
from deployer.runtimes.kubernetes.spec import (
    ClusterSettings,
    KubernetesAppSpec,
    unreachable_code,
)

RESERVED_TAGS = RENDERER_LABELS | {PROJECT_LABEL, BRANCH_LABEL}
"""Label keys the runtime writes itself; a tag must not overwrite them."""


def unsupported(config: AppConfig) -> list[str]:
    """One `parameter: why` line per parameter the Kubernetes runtime cannot honour."""
    problems = []
    if config.image is None:
        problems.append("image: Kubernetes runs a baked image; pass image=bake_image(...).image")
    elif (where := image_location(config.image)) != "registry":
        place = "an OCI layout directory" if where == "layout" else "the local Docker Engine"
        problems.append(
            f"image: {config.image} is in {place} on this machine, which a cluster cannot pull "
            "from; bake with a registry target: bake_image(..., target='registry', "
            "registry='host/repo') or set BAKERY_REGISTRY"
        )
    if config.compute_pools:
        problems.append(
            "compute_pools: the Kubernetes runtime does not place apps on node pools; "
            "leave it out to run on any node of the cluster"
        )
    if config.persistence:
        problems.append("persistence: the Kubernetes runtime has no persistent volumes yet")
    if config.models:
        problems.append("models: the Kubernetes runtime cannot mount models yet")
    if config.data:
        problems.append("data: the Kubernetes runtime cannot mount data yet")
    if config.replicas.scaling_policy is not None and not config.auth.public:
        problems.append(
            "replicas: min != max scales on requests per minute, which are counted at the "
            "app's Ingress, and an app with auth.public=False has none (it is reachable only "
            "inside the cluster): make it public, or use a fixed number of replicas"
        )
    clashing = sorted(RESERVED_TAGS.intersection(config.tags))
    if clashing:
        problems.append(
            f"tags: {', '.join(clashing)} are labels the runtime sets itself; rename the tag"
        )
    if config.code_package is not None:
        problem = unreachable_code(config.code_package.url)
        if problem:
            problems.append(f"code_package: {problem}")
    return problems


def refuse(config: AppConfig, problems: Sequence[str]) -> None:
    """Raise one `AppConfigError` listing `problems`, if there are any."""
    if problems:
        raise AppConfigError(f"app {config.name!r} cannot run on Kubernetes:", problems)


def to_kubernetes_spec(
    config: AppConfig, version: str, record: AppRecord, cluster: ClusterSettings
) -> KubernetesAppSpec:
    """The spec the renderer needs for `version` of the app; `record` holds its API token.

    Raises `AppConfigError` for anything the runtime cannot honour, and
    `CodePackagingException` without a code package, as every deploy needs one.
    """
    refuse(config, unsupported(config))
    package = config.required_code_package()
    assert config.image is not None  # unsupported() refused a missing image
    resources, replicas, auth = config.resources, config.replicas, config.auth
    gpu = resources.gpu if resources.gpu is not None and resources.gpu.value > 0 else None
    try:
        return KubernetesAppSpec(
            name=config.name,
            version=version,
            image=config.image,
            port=config.port,
            namespace=cluster.namespace,
            commands=config.commands,
            # PORT, if given, equals `port` (the config checks it): the renderer sets it.
            environment={k: v for k, v in config.environment.items() if k != "PORT"},
            secrets=config.secrets,
            cpu=_text(resources.cpu),
            memory=_text(resources.memory),
            gpu=_text(gpu),
            disk=_text(resources.disk),
            shared_memory=_text(resources.shared_memory),
            min_replicas=replicas.min,
            max_replicas=replicas.max,
            rpm=replicas.scaling_policy.rpm if replicas.scaling_policy else None,
            auth_type=auth.type,
            public=auth.public,
            # Only the Ingress of a public app checks the token; without one there is no Secret.
            api_token=record.api_token if auth.public and auth.type in TOKEN_AUTH_TYPES else None,
            code_url=package.url,
            code_key=package.key,
            labels=labels(config),
        )
    except KubernetesSpecError as error:
        raise AppConfigError(f"app {config.name!r} cannot run on Kubernetes: {error}") from None


def labels(config: AppConfig) -> dict[str, str]:
    """Tags as they are (the config checked them as label keys and values), project, branch."""
    found = dict(config.tags)
    if config.project:
        found[PROJECT_LABEL] = config.project
    if config.branch:
        found[BRANCH_LABEL] = config.branch
    return found


def _text(quantity: Quantity | None) -> str | None:
    """As the user wrote it: the config and the spec parse quantities by the same rules."""
    return quantity.text if quantity is not None else None
