"""`AppDeployer`: the reference API's entry point, over any runtime.

It validates the reference's keyword arguments into an `AppConfig` and deploys: an app alone
through `deploy.deploy_one`, an app with `depends_on` through `plan.deploy_plan`, which
calls the same `deploy_one` for each app of its waves. `DeployedApp` (`deployed`) is what
both return, and what `get` and `list_deployments` find again.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from deployer.model.config import AppConfig
from deployer.orchestration.deploy import deploy_one
from deployer.orchestration.deployed import DeployedApp, find_apps, get_app
from deployer.orchestration.plan import deploy_plan
from deployer.orchestration.readiness import (
    DEFAULT_CONDITION,
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_READINESS_WAIT_TIME,
    check_condition,
    print_to_stderr,
)
from deployer.runtimes import as_runtime
from deployer.runtimes.base import Runtime


class AppDeployer:
    """Takes the reference's keyword arguments, validated at once by `AppConfig`.

    `runtime` picks where the app runs: "docker", "process", "kubernetes" or a `Runtime`
    object; by default `BAKERY_RUNTIME`, else docker where an engine answers, else local
    processes (chosen at deploy time).
    """

    def __init__(self, *, runtime: Runtime | str | None = None, **kwargs: Any) -> None:
        dependencies = kwargs.get("depends_on") or []
        self._dependencies = [d for d in dependencies if isinstance(d, AppDeployer)]
        if dependencies:
            kwargs["depends_on"] = [_dependency_name(d) for d in dependencies]
        self.config = AppConfig.from_kwargs(**kwargs)
        self._runtime = None if runtime is None else as_runtime(runtime)

    def deploy(
        self,
        readiness_condition: str = DEFAULT_CONDITION,
        max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
        readiness_wait_time: float = DEFAULT_READINESS_WAIT_TIME,
        logger_fn: Callable[[str], Any] = print_to_stderr,
    ) -> DeployedApp:
        """Start a new version, wait until `readiness_condition` holds, then switch the
        public URL to it and retire older versions. An unchanged config is a no-op.

        With `depends_on`, the dependencies (AppDeployers given there) are deployed first,
        in parallel where independent, and their URLs passed in (`plan.deploy_plan`).
        Deployment failures carry `deployed_app`, so callers can read its logs and replicas;
        the version that was serving before keeps serving.
        """
        check_condition(readiness_condition)  # before the default runtime is looked for
        runtime = self._runtime or as_runtime(None)
        options: dict[str, Any] = {
            "readiness_condition": readiness_condition,
            "max_wait_time": max_wait_time,
            "readiness_wait_time": readiness_wait_time,
            "logger_fn": logger_fn,
        }
        if not self.config.depends_on:
            return deploy_one(self.config, runtime, **options)
        configs = [deployer.config for deployer in self._closure()]
        return deploy_plan(configs, runtime, **options)[self.config.name]

    def _closure(self) -> list["AppDeployer"]:
        """This deployer and every AppDeployer it depends on, directly or not."""
        found: dict[str, AppDeployer] = {}
        pending = [self]
        while pending:
            deployer = pending.pop()
            if found.setdefault(deployer.config.name, deployer) is deployer:
                pending.extend(deployer._dependencies)
        return list(found.values())

    @staticmethod
    def get(name: str, runtime: Runtime | str | None = None) -> DeployedApp:
        """The app called `name` at its serving version, from any Python process."""
        return get_app(name, as_runtime(runtime))

    @staticmethod
    def list_deployments(
        name: str | None = None,
        project: str | None = None,
        branch: str | None = None,
        tags: Sequence[Mapping[str, str]] | None = None,
        runtime: Runtime | str | None = None,
    ) -> list[DeployedApp]:
        """Apps matching every given filter; `tags` match when the app has all of them."""
        return find_apps(
            as_runtime(runtime), name=name, project=project, branch=branch, tags=tags or ()
        )


def _dependency_name(dependency: object) -> object:
    """depends_on takes app names or AppDeployers; the config keeps names."""
    return dependency.config.name if isinstance(dependency, AppDeployer) else dependency
