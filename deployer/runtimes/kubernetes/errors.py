"""Errors of the Kubernetes runtime; the deployer maps them onto the public exception types."""


class KubernetesSpecError(ValueError):
    """The app asks for something this runtime or this cluster cannot honour (→ AppConfigError)."""


class InvalidManifest(ValueError):
    """A rendered manifest does not match the Kubernetes API schema: a bug in the renderer."""


class KubernetesUnavailable(Exception):
    """No cluster is configured, or it is unreachable or failing (→ BackendUnhealthyException)."""


class KubernetesRejected(Exception):
    """The API server refused a request (→ AppCreationFailedException)."""

    def __init__(self, status_code: int, error_text: str) -> None:
        super().__init__(f"the Kubernetes API server answered {status_code}: {error_text}")
        self.status_code = status_code
        self.error_text = error_text
