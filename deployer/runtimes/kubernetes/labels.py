"""Label keys shared by the renderer (which writes them) and the pod-state reader."""

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "bakery"
VERSION_LABEL = "bakery.dev/version"
"""On every pod, so a worker's version is known without looking up its ReplicaSet."""
PROJECT_LABEL = "bakery.dev/project"
BRANCH_LABEL = "bakery.dev/branch"
RENDERER_LABELS = frozenset({NAME_LABEL, MANAGED_BY_LABEL, VERSION_LABEL})
"""What the renderer writes on every object; an app's own labels must not set them."""

APP_CONTAINER = "app"
FETCH_CONTAINER = "fetch-code"


def selector_labels(name: str) -> dict[str, str]:
    """Labels that pick an app's pods across versions (a Deployment's selector is immutable)."""
    return {NAME_LABEL: name, MANAGED_BY_LABEL: MANAGER}
