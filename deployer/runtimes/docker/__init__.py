"""The docker runtime: an app's replicas as containers on the local Docker Engine."""

from deployer.runtimes.docker.runtime import DockerRuntime

__all__ = ["DockerRuntime"]
