"""Every deployer exception says what kind of failure it is, as `deployer.exceptions` documents.

A service maps the kind to a status and a client retries only what can succeed on a retry,
so the kinds must hold for every class, and for what the deployer really raises.
"""

import inspect

import docker
import pytest

from deployer import AppDeployer, exceptions
from deployer.exceptions import (
    AppConcurrentUpgradeException,
    AppConfigError,
    AppCrashLoopException,
    AppCreationFailedException,
    AppDeletedDuringDeploymentException,
    AppDeploymentException,
    AppNotFoundException,
    AppReadinessException,
    AppUpgradeInProgressException,
    BackendUnhealthyException,
    DeployerException,
)
from deployer.runtimes.docker.engine import engine_errors
from stagekit.errors import ErrorKind


def _exception_classes() -> list[type[DeployerException]]:
    return [
        cls
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, DeployerException) and cls.__module__ == exceptions.__name__
    ]


def test_every_exception_class_has_a_kind():
    classes = _exception_classes()
    assert len(classes) == 11  # the module's whole hierarchy, so none is overlooked
    for cls in classes:
        assert isinstance(cls.kind, ErrorKind), cls.__name__


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AppConfigError("bad", ["name: not a DNS label"]), ErrorKind.INVALID_INPUT),
        (AppNotFoundException("my-app"), ErrorKind.NOT_FOUND),
        (BackendUnhealthyException("docker", "refused"), ErrorKind.UNAVAILABLE),
        (BackendUnhealthyException("kubernetes", "forbidden", 403), ErrorKind.UNAVAILABLE),
        (AppUpgradeInProgressException("my-app", "alice"), ErrorKind.CONFLICT),
        (AppConcurrentUpgradeException("my-app", "v1", "v2"), ErrorKind.CONFLICT),
        (AppDeletedDuringDeploymentException("my-app"), ErrorKind.CONFLICT),
        (AppCrashLoopException("my-app", "w-1", ["ImportError"]), ErrorKind.INVALID_INPUT),
        (AppReadinessException("my-app", "0 of 1 running"), ErrorKind.DEADLINE_EXCEEDED),
        (AppDeploymentException("my-app", "failed"), ErrorKind.INTERNAL),
        (DeployerException("failed"), ErrorKind.INTERNAL),
    ],
)
def test_each_exception_has_its_documented_kind(error, kind):
    assert error.kind is kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.INVALID_INPUT),
        (403, ErrorKind.INVALID_INPUT),
        (422, ErrorKind.INVALID_INPUT),
        (404, ErrorKind.NOT_FOUND),
        (409, ErrorKind.CONFLICT),
        (429, ErrorKind.UNAVAILABLE),
        (500, ErrorKind.UNAVAILABLE),
        (503, ErrorKind.UNAVAILABLE),
        (302, ErrorKind.INTERNAL),
    ],
)
def test_a_creation_failure_takes_its_kind_from_the_http_status(status, kind):
    assert AppCreationFailedException("my-app", status, "refused").kind is kind


def test_an_instance_may_carry_another_kind_than_its_class():
    error = DeployerException("the engine went away", kind=ErrorKind.UNAVAILABLE)
    assert error.kind is ErrorKind.UNAVAILABLE
    assert DeployerException.kind is ErrorKind.INTERNAL
    assert DeployerException("failed").kind is ErrorKind.INTERNAL


def test_bad_parameters_are_invalid_input():
    with pytest.raises(AppConfigError) as caught:
        AppDeployer(name="Not A Name", port=8000)
    assert caught.value.kind is ErrorKind.INVALID_INPUT


def test_an_unknown_app_is_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_DATA_DIR", str(tmp_path))
    with pytest.raises(AppNotFoundException) as caught:
        AppDeployer.get("never-deployed", runtime="process")
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_the_engine_refusing_a_missing_image_is_not_found(docker_engine):
    """The real Docker Engine answers 404 for an image it does not have."""
    client = docker.from_env()
    missing = "sha256:" + "0" * 64
    with pytest.raises(AppCreationFailedException) as caught, engine_errors("my-app"):
        client.containers.create(missing)
    assert caught.value.status_code == 404
    assert caught.value.kind is ErrorKind.NOT_FOUND
