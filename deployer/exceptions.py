"""The deployer's exceptions: the reference API's hierarchy, plus `AppConfigError`.

Everything derives from `DeployerException`, so a caller can catch the deployer as a whole.
As in the reference, `AppDeploymentException` covers failures *after* the runtime accepted
the app and carries `app_id` and `deployed_app`; creation refusals, missing apps and an
unhealthy runtime are separate, because no deployed app exists to inspect.

Each carries a `kind` (`stagekit.errors.ErrorKind`), so a service or client can act on it
without reading the message; the class sets it, an instance may be given another:

- INVALID_INPUT: `AppConfigError` (the parameters are wrong) and `AppCrashLoopException`
  (the app's own code, image or command fails, so the same deployment fails again).
- NOT_FOUND: `AppNotFoundException` (no app of that name).
- UNAVAILABLE: `BackendUnhealthyException` (the engine, cluster or nginx fails: retry later).
- CONFLICT: `AppUpgradeInProgressException`, `AppConcurrentUpgradeException`,
  `AppDeletedDuringDeploymentException` (another deployment or user holds or changed the app).
- DEADLINE_EXCEEDED: `AppReadinessException` (not ready within `max_wait_time`; the app may
  still come up).
- `AppCreationFailedException`: by the runtime's HTTP status, which says whose fault it is:
  404 NOT_FOUND, 409 CONFLICT, 429 and 5xx UNAVAILABLE, any other 4xx INVALID_INPUT, anything
  else INTERNAL.
- INTERNAL: `DeployerException` and `AppDeploymentException` themselves (any other failure).
"""

from collections.abc import Sequence
from typing import Any

from stagekit.errors import ErrorKind

_LOG_TAIL = 10


class DeployerException(Exception):
    """Base of every exception the deployer raises; `message` says what happened and what to do,
    `kind` what sort of failure it is (the class's, unless given)."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind


class AppConfigError(DeployerException, ValueError):
    """The app configuration is invalid; `problems` holds one `field: what is wrong` per line.

    Also a `ValueError`, so code that treats bad arguments generically still catches it.
    """

    kind = ErrorKind.INVALID_INPUT

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        if self.problems:
            message += "\n" + "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(message)


class AppDeploymentException(DeployerException):
    """A deployment failed after the runtime accepted it.

    `deployed_app` is the runtime's `DeployedApp` for the failed deployment (inspect
    `e.deployed_app.logs()` or `.replicas()`); it is None when the runtime could not build one.
    """

    def __init__(self, app_id: str, message: str, *, deployed_app: Any = None) -> None:
        super().__init__(message)
        self.app_id = app_id
        self.deployed_app = deployed_app


class AppCrashLoopException(AppDeploymentException):
    """A worker of the new version keeps crashing (crash loop or failed) during startup.

    `worker_id` names the replica; `logs` holds its recent log lines, which usually show the
    cause (an import error, a missing dependency, a bad command); `reason` is the runtime's
    word on it, when it has one (an exit code, or why it refuses to serve the worker).
    """

    kind = ErrorKind.INVALID_INPUT

    def __init__(
        self,
        app_id: str,
        worker_id: str,
        logs: Sequence[Any] | None = None,
        *,
        reason: str | None = None,
        deployed_app: Any = None,
    ) -> None:
        self.worker_id = worker_id
        self.logs = list(logs or [])
        self.reason = reason
        message = (
            f"app {app_id!r}: worker {worker_id} is crash-looping: its command exits or fails "
            "soon after it starts. Fix the error its logs show, then deploy again."
        )
        if reason:
            message += f"\nthe runtime says: {reason}"
        tail = self.logs[-_LOG_TAIL:]
        if tail:
            message += "\nlast log lines:\n" + "\n".join(f"  {line}" for line in tail)
        super().__init__(app_id, message, deployed_app=deployed_app)


class AppReadinessException(AppDeploymentException):
    """The app did not meet its readiness condition within `max_wait_time`."""

    kind = ErrorKind.DEADLINE_EXCEEDED

    def __init__(self, app_id: str, reason: str | None = None, *, deployed_app: Any = None) -> None:
        self.reason = reason
        message = f"app {app_id!r} did not become ready"
        if reason:
            message += f": {reason}"
        message += (
            ". Inspect e.deployed_app.logs() and e.deployed_app.replicas(); if the app only "
            "starts slowly, raise max_wait_time; check that it listens on the configured port."
        )
        super().__init__(app_id, message, deployed_app=deployed_app)


class AppUpgradeInProgressException(AppDeploymentException):
    """Another deployment of this app is still in progress; `upgrader` says who runs it."""

    kind = ErrorKind.CONFLICT

    def __init__(
        self, app_id: str, upgrader: str | None = None, *, deployed_app: Any = None
    ) -> None:
        self.upgrader = upgrader
        by = f" by {upgrader}" if upgrader else ""
        message = (
            f"app {app_id!r} is being upgraded{by}. Wait for that deployment to finish, "
            "or pass force_upgrade=True to take over."
        )
        super().__init__(app_id, message, deployed_app=deployed_app)


class AppConcurrentUpgradeException(AppDeploymentException):
    """Someone deployed a newer version while this deployment was in progress, invalidating it."""

    kind = ErrorKind.CONFLICT

    def __init__(
        self,
        app_id: str,
        expected_version: str,
        actual_version: str,
        modified_by: str | None = None,
        modified_at: str | None = None,
        *,
        deployed_app: Any = None,
    ) -> None:
        self.expected_version = expected_version
        self.actual_version = actual_version
        self.modified_by = modified_by
        self.modified_at = modified_at
        by = f" by {modified_by}" if modified_by else ""
        at = f" at {modified_at}" if modified_at else ""
        message = (
            f"app {app_id!r}: another deployment started{by}{at} while this one was in "
            f"progress; this deployment expected version {expected_version!r}, the app is now "
            f"at {actual_version!r}, so this deployment is invalidated. Use a unique name per "
            "deployment or coordinate deployers of the same app."
        )
        super().__init__(app_id, message, deployed_app=deployed_app)


class AppDeletedDuringDeploymentException(AppDeploymentException):
    """The app was deleted by another process or user while this deployment was waiting."""

    kind = ErrorKind.CONFLICT

    def __init__(self, app_id: str, *, deployed_app: Any = None) -> None:
        message = (
            f"app {app_id!r} was deleted while this deployment was in progress; check for "
            "other processes or users managing the same app, then deploy again."
        )
        super().__init__(app_id, message, deployed_app=deployed_app)


class AppCreationFailedException(DeployerException):
    """The runtime refused to create the app; `status_code` and `error_text` say why."""

    def __init__(self, app_name: str, status_code: int, error_text: str) -> None:
        self.app_name = app_name
        self.status_code = status_code
        self.error_text = error_text
        message = (
            f"the runtime refused to create app {app_name!r} (status {status_code}): "
            f"{error_text}. Check the AppDeployer parameters, quotas and permissions."
        )
        super().__init__(message, kind=_kind_of_status(status_code))


class AppNotFoundException(DeployerException):
    """The app does not exist: it was deleted or never deployed."""

    kind = ErrorKind.NOT_FOUND

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        message = (
            f"app {app_id!r} does not exist (deleted, or never deployed); "
            "find deployed apps with AppDeployer.list_deployments()"
        )
        super().__init__(message)


class BackendUnhealthyException(DeployerException):
    """The runtime is unreachable or failing.

    Corresponds to the reference's `OuterboundsBackendUnhealthyException`. A platform-side
    problem, not a configuration one: retrying after a short delay often works.
    """

    kind = ErrorKind.UNAVAILABLE

    def __init__(self, backend: str, detail: str, status_code: int | None = None) -> None:
        self.backend = backend
        self.detail = detail
        self.status_code = status_code
        status = f" (status {status_code})" if status_code is not None else ""
        message = (
            f"the {backend} runtime is unreachable or failing{status}: {detail}. "
            f"Check that the {backend} engine is running, then retry."
        )
        super().__init__(message)


def _kind_of_status(status: int) -> ErrorKind:
    """What an HTTP status from a runtime's API says about the failure."""
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 409:
        return ErrorKind.CONFLICT
    if status == 429 or 500 <= status < 600:
        return ErrorKind.UNAVAILABLE
    if 400 <= status < 500:
        return ErrorKind.INVALID_INPUT
    return ErrorKind.INTERNAL
