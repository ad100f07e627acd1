"""Where apps run. `default_runtime` picks one: `BAKERY_RUNTIME` (docker, process,
kubernetes), else docker where an engine answers, else local processes; `as_runtime` turns
what users pass as `runtime=` (a name, a `Runtime`, or nothing) into a `Runtime`."""

import os
from typing import TYPE_CHECKING, Literal, get_args

from deployer.exceptions import AppConfigError, BackendUnhealthyException

if TYPE_CHECKING:  # the protocol imports the app model (pydantic): not needed to pick a name
    from deployer.runtimes.base import Runtime

RuntimeKind = Literal["docker", "process", "kubernetes"]
RUNTIMES: tuple[str, ...] = get_args(RuntimeKind)


def runtime_named(kind: str) -> "Runtime":
    if kind == "docker":
        from deployer.runtimes.docker import DockerRuntime

        return DockerRuntime()
    if kind == "process":
        from deployer.runtimes.process import ProcessRuntime

        return ProcessRuntime()
    if kind == "kubernetes":
        from deployer.runtimes.kubernetes.runtime import KubernetesRuntime

        return KubernetesRuntime()
    raise AppConfigError(f"runtime {kind!r} is unknown; use one of {', '.join(RUNTIMES)}")


def default_runtime() -> "Runtime":
    configured = os.environ.get("BAKERY_RUNTIME")
    if configured:
        if configured not in RUNTIMES:
            raise AppConfigError(
                f"BAKERY_RUNTIME={configured!r} is not a runtime; use one of {', '.join(RUNTIMES)}"
            )
        return runtime_named(configured)
    docker = runtime_named("docker")
    try:
        docker.ping()
    except BackendUnhealthyException:
        return runtime_named("process")
    return docker


def as_runtime(runtime: "Runtime | str | None") -> "Runtime":
    """`runtime=` as the README documents it: a runtime's name, a `Runtime` object, or None
    for the default runtime."""
    if runtime is None:
        return default_runtime()
    if isinstance(runtime, str):
        return runtime_named(runtime)
    from deployer.runtimes.base import Runtime  # the protocol imports the app model

    if isinstance(runtime, Runtime):
        return runtime
    raise AppConfigError(
        f"runtime={runtime!r} is neither a runtime name ({', '.join(RUNTIMES)}) nor a "
        "Runtime object"
    )
