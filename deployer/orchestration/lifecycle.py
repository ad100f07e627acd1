"""`app_deploy`: the reference's `@app_deploy` lifecycle helper, for plain Python.

Inside it (as a decorator or a `with` block) every deployed app is tagged with the run's id,
so `run.list()` finds the apps of this run, and on exit, success or failure, they are kept,
scaled to zero or deleted according to `cleanup_policy`. Each deployment (`deploy_one`)
finds the run through a context variable (`in_current_run`), so code inside needs to be
handed nothing, and tells the run which runtime it used (`note_runtime`), so apps deployed
with `runtime=` other than the default are listed and cleaned up on their own runtime.
"""

import contextvars
import functools
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args

from deployer.exceptions import AppConfigError
from deployer.model.config import AppConfig
from deployer.orchestration.deployed import DeployedApp, find_apps
from deployer.runtimes import as_runtime
from deployer.runtimes.base import Runtime

RUN_TAG = "bakery-run"
CleanupPolicy = Literal["none", "scale_down", "delete"]
_F = TypeVar("_F", bound=Callable[..., Any])

current_run: contextvars.ContextVar["AppRun | None"] = contextvars.ContextVar(
    "current_run", default=None
)


class AppRun:
    """One run: its id, its cleanup policy and the apps deployed in it."""

    def __init__(self, cleanup_policy: str = "none", run_id: str | None = None) -> None:
        if cleanup_policy not in get_args(CleanupPolicy):
            raise AppConfigError(
                f"cleanup_policy {cleanup_policy!r} is unknown; use one of "
                f"{', '.join(get_args(CleanupPolicy))}"
            )
        self.cleanup_policy = cleanup_policy
        self.run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
        self._token: contextvars.Token | None = None
        self._runtimes: dict[str, Runtime] = {}
        """The runtimes apps were deployed on in this run, by kind."""

    @property
    def tag(self) -> dict[str, str]:
        return {RUN_TAG: self.run_id}

    def tagged(self, config: AppConfig) -> AppConfig:
        """`config` with this run's tag added."""
        if config.tags.get(RUN_TAG) == self.run_id:
            return config
        return config.replace(tags={**config.tags, RUN_TAG: self.run_id})

    def used(self, runtime: Runtime) -> None:
        """Note that an app of this run is being deployed on `runtime` (`note_runtime`)."""
        self._runtimes.setdefault(runtime.kind, runtime)

    def list(self) -> list[DeployedApp]:
        """The apps of this run: on every runtime it deployed to, and on the default runtime
        (where other processes sharing the run id deploy)."""
        runtimes = dict(self._runtimes)
        default = as_runtime(None)
        runtimes.setdefault(default.kind, default)
        return [app for runtime in runtimes.values() for app in find_apps(runtime, tags=[self.tag])]

    def __enter__(self) -> "AppRun":
        self._token = current_run.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None
        current_run.reset(self._token)
        if self.cleanup_policy == "none":
            return
        for app in self.list():
            if self.cleanup_policy == "delete":
                app.delete()
            else:
                app.scale_to_zero()


def in_current_run(config: AppConfig) -> AppConfig:
    """Inside `app_deploy`, apps carry the run's tag."""
    run = current_run.get()
    return run.tagged(config) if run is not None else config


def note_runtime(runtime: Runtime) -> None:
    """Inside `app_deploy`, the run cleans up on every runtime its apps were deployed on."""
    run = current_run.get()
    if run is not None:
        run.used(runtime)


def app_deploy(
    function: _F | None = None, *, cleanup_policy: str = "none", run_id: str | None = None
) -> Any:
    """`@app_deploy`, `@app_deploy(cleanup_policy="delete")` or `with app_deploy(...) as run`.

    As a decorator, each call of the function is a run of its own.
    """
    if function is None:
        return _Helper(cleanup_policy, run_id)
    return _Helper(cleanup_policy, run_id)(function)


class _Helper:
    def __init__(self, cleanup_policy: str, run_id: str | None) -> None:
        AppRun(cleanup_policy)  # validate the policy at decoration time
        self.cleanup_policy, self.run_id = cleanup_policy, run_id
        self._run: AppRun | None = None

    def __call__(self, function: _F) -> _F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with AppRun(self.cleanup_policy, self.run_id):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    def __enter__(self) -> AppRun:
        self._run = AppRun(self.cleanup_policy, self.run_id)
        return self._run.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        assert self._run is not None
        self._run.__exit__(*exc_info)
