"""The Docker Engine through the Docker SDK, with its failures in the deployer's terms.

An engine that cannot be reached becomes `BackendUnhealthyException`; a request the engine
refuses becomes `AppCreationFailedException` carrying the engine's HTTP status and message.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import docker
import requests
from docker.errors import APIError, DockerException

from deployer.exceptions import AppCreationFailedException, BackendUnhealthyException

BACKEND = "docker"


def connect() -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (the local socket by default)."""
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as error:
        raise BackendUnhealthyException(
            BACKEND, f"no Docker Engine answers ({error}); start dockerd or set DOCKER_HOST"
        ) from None
    return client


@contextmanager
def engine_errors(app: str) -> Iterator[None]:
    """Map the SDK's errors for requests made on behalf of `app`."""
    try:
        yield
    except APIError as error:
        status = error.status_code or 500
        raise AppCreationFailedException(app, status, error.explanation or str(error)) from None
    except (DockerException, requests.ConnectionError) as error:
        raise BackendUnhealthyException(BACKEND, str(error)) from None
