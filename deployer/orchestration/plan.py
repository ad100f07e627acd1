"""Deploy several apps that depend on each other: dependencies first, independent ones at once.

As Flyte's `depends_on` does: a dependency is ready before its dependents start, apps of one
wave (`graph.deploy_order`) deploy in parallel threads, and each dependent gets its
dependencies' URLs in its environment as `BAKERY_APP_<NAME>_URL` (the internal URL where the
runtime has one, else the public one). A name that is not among the apps being deployed must
already be deployed.
"""

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deployer.exceptions import AppConfigError
from deployer.model.config import AppConfig
from deployer.orchestration.deploy import deploy_one
from deployer.orchestration.deployed import DeployedApp, find_apps
from deployer.orchestration.graph import deploy_order
from deployer.orchestration.readiness import (
    DEFAULT_CONDITION,
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_READINESS_WAIT_TIME,
    print_to_stderr,
)
from deployer.runtimes.base import Runtime

MAX_PARALLEL = 4


def url_variable(name: str) -> str:
    """`BAKERY_APP_<NAME>_URL`: the app name upper-cased, '-' as '_'."""
    return f"BAKERY_APP_{name.upper().replace('-', '_')}_URL"


def with_dependency_urls(config: AppConfig, deployed: dict[str, DeployedApp]) -> AppConfig:
    """`config` with its dependencies' URLs added; variables the user set win."""
    urls = {}
    for dependency in config.depends_on:
        app = deployed[dependency]
        url = app.internal_url or app.public_url
        if url is not None:
            urls[url_variable(dependency)] = url
    if not urls:
        return config
    return config.replace(environment={**urls, **config.environment})


def deploy_plan(
    configs: Sequence[AppConfig],
    runtime: Runtime,
    *,
    readiness_condition: str = DEFAULT_CONDITION,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    readiness_wait_time: float = DEFAULT_READINESS_WAIT_TIME,
    logger_fn: Callable[[str], Any] = print_to_stderr,
) -> dict[str, DeployedApp]:
    """Deploy `configs` in dependency order, each by `deploy_one` with these options;
    returns every app by name, dependencies too.

    A failure stops the plan after the wave it happened in (the rest of that wave finishes)
    and is raised; apps deployed before it stay deployed.
    """
    planned = {config.name: config for config in configs}
    for config in configs:  # refuse before the first wave, not halfway through the plan
        runtime.refuse_unsupported(config)
    deployed = _already_deployed(planned, runtime)
    waves = deploy_order(
        {name: [d for d in c.depends_on if d in planned] for name, c in planned.items()}
    )
    for number, wave in enumerate(waves, start=1):
        logger_fn(f"deploy wave {number}/{len(waves)}: {', '.join(wave)}")
        with ThreadPoolExecutor(max_workers=min(len(wave), MAX_PARALLEL)) as pool:
            futures = {
                name: pool.submit(
                    contextvars.copy_context().run,  # an `app_deploy` run reaches the threads
                    deploy_one,
                    with_dependency_urls(planned[name], deployed),
                    runtime,
                    readiness_condition=readiness_condition,
                    max_wait_time=max_wait_time,
                    readiness_wait_time=readiness_wait_time,
                    logger_fn=logger_fn,
                )
                for name in wave
            }
            errors = []
            for name, future in futures.items():
                try:
                    deployed[name] = future.result()
                except Exception as error:
                    errors.append(error)
        if errors:
            raise errors[0]
    return deployed


def _already_deployed(planned: dict[str, AppConfig], runtime: Runtime) -> dict[str, DeployedApp]:
    """Dependencies outside the plan, which must be deployed already."""
    outside = sorted({d for c in planned.values() for d in c.depends_on if d not in planned})
    found = {}
    for name in outside:
        apps = find_apps(runtime, name=name)
        if not apps:
            needed_by = sorted(n for n, c in planned.items() if name in c.depends_on)
            raise AppConfigError(
                f"{', '.join(map(repr, needed_by))} depends on app {name!r}, which is neither "
                f"deployed on {runtime.kind} nor among the apps being deployed; deploy it first "
                "or pass its AppDeployer in depends_on"
            )
        found[name] = apps[0]
    return found
