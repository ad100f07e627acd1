"""Deploy a spec file: package and bake what its documents ask for, then deploy them all.

Every document is packaged and baked before any app is deployed, so a failing bake leaves
nothing half-deployed. Documents with identical `code:` or `bake:` sections share one
package or image: the work is done once per distinct section, not once per app.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bakery.bake import bake_image
from deployer.model.config import AppConfig
from deployer.model.specs import BakeSection, CodeSection, DeploymentSpec, load_specs
from deployer.orchestration.deployed import DeployedApp
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
from packager import PackagedCode, package_code
from stagekit.progress import ProgressCallback

_T = TypeVar("_T")


class _Builds:
    """The packages and images made for one spec file, by section content."""

    def __init__(self, logger_fn: Callable[[str], Any], progress: ProgressCallback | None):
        self._logger_fn = logger_fn
        self._progress = progress
        self._made: dict[str, Any] = {}

    def _once(self, section: CodeSection | BakeSection, message: str, make: Callable[[], _T]) -> _T:
        key = f"{type(section).__name__}:{section.model_dump_json()}"
        if key not in self._made:
            self._logger_fn(message)
            self._made[key] = make()
        return self._made[key]

    def package(self, name: str, code: CodeSection) -> PackagedCode:
        return self._once(
            code,
            f"app {name!r}: packaging {', '.join(code.src_paths)}",
            lambda: package_code(**code.kwargs(), logger=self._logger_fn, progress=self._progress),
        )

    def bake(self, name: str, bake: BakeSection) -> str:
        return self._once(
            bake,
            f"app {name!r}: baking its image",
            lambda: (
                bake_image(**bake.kwargs(), logger=self._logger_fn, progress=self._progress).image
            ),
        )


def prepare_specs(
    specs: list[DeploymentSpec],
    *,
    logger_fn: Callable[[str], Any] = print_to_stderr,
    progress: ProgressCallback | None = None,
) -> list[AppConfig]:
    """Each spec's config with `code_package` and `image` filled in from its sections.

    Packaging and baking errors keep their types (`CodePackagingException`,
    `ImageBakingException`); the log line just before names the app they were for.
    """
    builds = _Builds(logger_fn, progress)
    configs = []
    for spec in specs:
        changes: dict[str, Any] = {}
        if spec.code is not None:
            changes["code_package"] = builds.package(spec.name, spec.code)
        if spec.bake is not None:
            changes["image"] = builds.bake(spec.name, spec.bake)
        configs.append(spec.config.replace(**changes) if changes else spec.config)
    return configs


def deploy_spec_file(
    path: str | Path,
    *,
    runtime: Runtime | str | None = None,
    logger_fn: Callable[[str], Any] = print_to_stderr,
    progress: ProgressCallback | None = None,
    readiness_condition: str = DEFAULT_CONDITION,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    readiness_wait_time: float = DEFAULT_READINESS_WAIT_TIME,
) -> dict[str, DeployedApp]:
    """Deploy every app of the YAML spec file at `path`, dependencies first; apps by name.

    The file, the readiness condition and the runtime are checked before anything is
    packaged or baked, and every app against the runtime before any is deployed. Raises
    `AppConfigError`, packaging and baking exceptions, and the deployer's exceptions.
    """
    specs = load_specs(path)
    check_condition(readiness_condition)
    runtime = as_runtime(runtime)
    runtime.ping()
    configs = prepare_specs(specs, logger_fn=logger_fn, progress=progress)
    return deploy_plan(
        configs,
        runtime,
        logger_fn=logger_fn,
        readiness_condition=readiness_condition,
        max_wait_time=max_wait_time,
        readiness_wait_time=readiness_wait_time,
    )
