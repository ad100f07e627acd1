"""Where apps run. `default_runtime` picks one: `BAKERY_RUNTIME` (docker, process,
kubernetes), else docker where an engine answers, else local processes."""

import os

from deployer.exceptions import AppConfigError, BackendUnhealthyException
from deployer.runtimes.base import Runtime

RUNTIMES = ("docker", "process", "kubernetes")


def runtime_named(kind: str) -> Runtime:
    if kind == "docker":
        from deployer.runtimes.docker import DockerRuntime

        return DockerRuntime()
    if kind == "process":
        from deployer.runtimes.process import ProcessRuntime

        return ProcessRuntime()
    if kind == "kubernetes":
        from deployer.runtimes.kubernetes.runtime import KubernetesRuntime

        return KubernetesRuntime()
    raise AppConfigError(
        f"BAKERY_RUNTIME={kind!r} is not a runtime; use one of {', '.join(RUNTIMES)}"
    )


def default_runtime() -> Runtime:
    configured = os.environ.get("BAKERY_RUNTIME")
    if configured:
        return runtime_named(configured)
    docker = runtime_named("docker")
    try:
        docker.ping()
    except BackendUnhealthyException:
        return runtime_named("process")
    return docker
