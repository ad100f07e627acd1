"""The process runtime: replicas as local processes in a host venv built from a baked image."""

from deployer.runtimes.process.runtime import ProcessRuntime

__all__ = ["ProcessRuntime"]
