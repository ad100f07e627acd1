"""`AppDeployer` and `DeployedApp`: the reference API's entry points, on the docker runtime.

This is the first vertical slice: one runtime (docker), containers started and observed
through the engine, readiness decided by `deployer.readiness`. `public_url` is still the
first replica's published port; the proxy that fronts all replicas (and enforces API auth)
comes next, and so do `list_deployments`, `scale_to_zero` and the other runtimes.
"""

import functools
import sys
from collections.abc import Callable
from typing import Any

from deployer.config import AppConfig
from deployer.exceptions import AppDeploymentException, AppNotFoundException
from deployer.readiness import wait_until_ready
from deployer.runtimes.docker.runtime import DockerRuntime, Replica

_print_to_stderr = functools.partial(print, file=sys.stderr)


class DeployedApp:
    """A deployed app as the engine shows it; every property reads the engine afresh."""

    def __init__(self, runtime: DockerRuntime, name: str, version: str, port: int) -> None:
        self._runtime = runtime
        self.name = name
        self.deployed_version = version
        self.port = port

    @property
    def id(self) -> str:
        """On docker an app is identified by its name (the label on every container)."""
        return self.name

    def replicas(self) -> list[Replica]:
        """This version's containers, running or not."""
        return [r for r in self._runtime.replicas(self.name) if r.version == self.deployed_version]

    @property
    def public_url(self) -> str | None:
        """The first replica's published port on 127.0.0.1, for this slice.

        A proxy fronting all replicas replaces it next; None while no replica has a port.
        """
        return next((r.url for r in self.replicas() if r.url), None)

    @property
    def internal_url(self) -> str | None:
        """Address of the first replica on the engine's network, for other containers."""
        for replica in self.replicas():
            if replica.ip_address:
                return f"http://{replica.ip_address}:{self.port}"
        return None

    def logs(self) -> dict[str, list[str]]:
        """{worker_id: [line, ...]} for every container of this version."""
        wanted = {r.worker_id for r in self.replicas()}
        return {k: v for k, v in self._runtime.logs(self.name).items() if k in wanted}

    def delete(self) -> None:
        """Remove every container of the app, all versions."""
        self._runtime.delete(self.name)

    def __repr__(self) -> str:
        return f"DeployedApp(name={self.name!r}, version={self.deployed_version!r})"


class AppDeployer:
    """Takes the reference's keyword arguments, validated at once by `AppConfig`."""

    def __init__(self, *, runtime: DockerRuntime | None = None, **kwargs: Any) -> None:
        self.config = AppConfig.from_kwargs(**kwargs)
        self._runtime = runtime

    def deploy(
        self,
        readiness_condition: str = "at_least_one_running",
        max_wait_time: float = 600,
        readiness_wait_time: float = 10,
        logger_fn: Callable[[str], Any] = _print_to_stderr,
    ) -> DeployedApp:
        """Start the app and wait until `readiness_condition` holds; old versions go after.

        Deployment failures carry `deployed_app`, so callers can read its logs and replicas.
        """
        runtime = self._runtime or DockerRuntime()
        name = self.config.name
        logger_fn(f"deploying app {name!r} on docker")
        version = runtime.deploy(self.config)
        app = DeployedApp(runtime, name, version, self.config.port)
        try:
            wait_until_ready(
                lambda: runtime.snapshot(name),
                readiness_condition,
                app_id=name,
                version=version,
                max_wait_time=max_wait_time,
                readiness_wait_time=readiness_wait_time,
                logger_fn=logger_fn,
                logs_fn=lambda worker_id: runtime.worker_logs(name, worker_id),
                deployed_app=app,
            )
        except AppDeploymentException as error:
            if error.deployed_app is None:
                error.deployed_app = app
            raise
        runtime.retire(name, keep_version=version)
        return app

    @staticmethod
    def get(name: str, runtime: DockerRuntime | None = None) -> DeployedApp:
        """The app called `name` at its newest version, found by its container labels.

        Works from any Python process: the engine's labels are the only record.
        """
        runtime = runtime or DockerRuntime()
        replicas = runtime.replicas(name)
        if not replicas:
            raise AppNotFoundException(name)
        newest = replicas[-1]
        return DeployedApp(runtime, name, newest.version, newest.port)
