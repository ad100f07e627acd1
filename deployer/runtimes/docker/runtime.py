"""Run an app's replicas as containers on the Docker Engine, and observe them.

One container per replica, named `bakery-<app>-<version>-<i>` and labelled with the app and
its version, so old and new versions can run side by side during an upgrade and a new
Python process finds them again. Each replica publishes its port on a fixed 127.0.0.1 port
(stable across container restarts) that the app's nginx (`deployer.host.proxy`) forwards to.
Containers restart unless stopped, as a supervised server would; a crash shows as
`restarting`, which is the crash loop the reference reports.

The code package is fetched (and verified) on the host once per version and bind-mounted
read-only at /app; this assumes the engine runs on this machine, as a local runtime does.
The image may be any `bake_image` result: an OCI layout image is loaded into the engine
first (`images.py`), a registry image is pulled by the engine.
"""

import hashlib
import json
import socket
from collections.abc import Mapping
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.types import Mount

from deployer.host.proxy import LocalProxy, free_port
from deployer.host.secrets import SecretStore
from deployer.model.config import AppConfig
from deployer.orchestration.readiness import Phase, WorkerStatus
from deployer.runtimes.base import LogLine, Worker
from deployer.runtimes.docker.engine import connect, engine_errors
from deployer.runtimes.docker.images import engine_image
from deployer.runtimes.local import ProxyExposure, local_code, refuse

APP_LABEL = "bakery.app"
VERSION_LABEL = "bakery.version"
PORT_LABEL = "bakery.port"
SECRETS_LABEL = "bakery.environment-digest"
PROJECT_LABEL = "bakery.project"
BRANCH_LABEL = "bakery.branch"
TAG_PREFIX = "bakery.tag."
WORKDIR = "/app"
_PROBE_TIMEOUT = 0.5
_STOP_TIMEOUT = 5
_PORT_ATTEMPTS = 5


def labels_for(config: AppConfig, version: str, environment: dict[str, str]) -> dict[str, str]:
    """App, version, project, branch and tags, so `docker ps --filter label=…` finds an
    app's containers as list_deployments finds the app. The environment's digest is a label
    too: a changed secret value recreates the replicas at the same version (the config, and
    so the version, holds only names)."""
    labels = {
        APP_LABEL: config.name,
        VERSION_LABEL: version,
        PORT_LABEL: str(config.port),
        SECRETS_LABEL: _digest(environment),
    }
    if config.project:
        labels[PROJECT_LABEL] = config.project
    if config.branch:
        labels[BRANCH_LABEL] = config.branch
    labels.update({f"{TAG_PREFIX}{key}": value for key, value in config.tags.items()})
    return labels


def resource_options(config: AppConfig) -> dict[str, int]:
    """cpu, memory and shared_memory as engine limits (nano-CPUs and bytes, exactly)."""
    resources = config.resources
    options = {}
    if resources.cpu is not None:
        options["nano_cpus"] = resources.cpu.value * 1_000_000
    if resources.memory is not None:
        options["mem_limit"] = resources.memory.value
    if resources.shared_memory is not None:
        options["shm_size"] = resources.shared_memory.value
    return options


def refuse_unsupported(config: AppConfig) -> None:
    extra = []
    if config.resources.gpu is not None or config.resources.disk is not None:
        extra.append("resources.gpu/disk: not supported by the docker runtime")
    refuse(config, "docker", extra)


_CRASHES_FOR_A_LOOP = 2
"""Exits before a restarting container counts as crash-looping."""


def _phase(state: Mapping[str, Any], restarts: int) -> tuple[Phase, str | None]:
    """Container state → readiness phase: a server that exited again after being restarted
    is crash-looping (as Kubernetes' CrashLoopBackOff: crashed, restarted, crashed again). The
    engine marks a container `restarting` from its first exit on; until it has been
    restarted once (RestartCount counts restarts begun, so 1 after the first exit) the first
    exit may still be a slow start's, so it is `pending`."""
    status = state.get("Status", "")
    if status == "running":
        return "running", None
    if status == "created":
        return "pending", "container is created"
    if status == "restarting":
        exited = f"command exited with code {state.get('ExitCode')}"
        if restarts < _CRASHES_FOR_A_LOOP:
            return "pending", f"{exited}, restarting"
        return "crashloop", f"{exited} {restarts} times, restarting"
    if status == "exited":
        return "terminated", f"container stopped (exit code {state.get('ExitCode')})"
    if status == "removing":
        return "terminated", "container is being removed"
    return "failed", f"container is {status or 'in an unknown state'}: {state.get('Error', '')}"


def _digest(environment: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(environment, sort_keys=True).encode()).hexdigest()[:16]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _sortable(stamp: str) -> str:
    """RFC 3339 with nanoseconds, made sortable as text: the engine trims trailing zeros."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{seconds}.{fraction.ljust(9, '0')}"


class DockerRuntime(ProxyExposure):
    """Start, observe, stop and remove an app's containers; the engine holds all the state."""

    kind = "docker"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        proxy: LocalProxy | None = None,
        secrets: SecretStore | None = None,
    ) -> None:
        self._client = client
        self.proxy = proxy or LocalProxy(self.kind)
        self.secrets = secrets or SecretStore()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def ping(self) -> None:
        self.client  # noqa: B018 - connecting pings

    def refuse_unsupported(self, config: AppConfig) -> None:
        refuse_unsupported(config)

    def start(self, config: AppConfig, version: str) -> None:
        """Make `version`'s containers run: stopped ones (scaled to zero) are started again,
        crash-looping or missing ones are created afresh."""
        refuse_unsupported(config)
        environment = {
            **config.environment,
            **self.secrets.environment(config.secrets),
            "PORT": str(config.port),
        }
        wanted = max(config.replicas.min, 1)
        secrets = _digest(environment)
        with engine_errors(config.name):
            existing = self._containers(config.name, version)
            healthy = [
                c
                for c in existing
                if c.status in ("running", "exited", "created")
                and c.labels.get(SECRETS_LABEL) == secrets
            ]
            if len(healthy) == len(existing) == wanted:
                for container in healthy:
                    if container.status != "running":
                        container.start()
                return
            for container in existing:
                container.remove(force=True, v=True)
            code = local_code(config.name, version, config.required_code_package())
            assert config.image is not None  # refuse_unsupported checked it
            image = engine_image(config.image, self.client)
            for index in range(wanted):
                self._run(config, version, index, image, code=str(code), environment=environment)

    def _run(
        self,
        config: AppConfig,
        version: str,
        index: int,
        image: str,
        *,
        code: str,
        environment: dict,
    ) -> None:
        """One replica of `image` (as the engine names it); its host port is chosen here and
        retried if another process took it."""
        for attempt in range(_PORT_ATTEMPTS):
            try:
                self.client.containers.run(
                    image,
                    ["/bin/sh", "-c", " && ".join(config.commands)],
                    detach=True,
                    name=f"bakery-{config.name}-{version}-{index}",
                    labels=labels_for(config, version, environment),
                    environment=environment,
                    mounts=[Mount(WORKDIR, code, type="bind", read_only=True)],
                    working_dir=WORKDIR,
                    ports={f"{config.port}/tcp": ("127.0.0.1", free_port())},
                    restart_policy={"Name": "unless-stopped"},
                    **resource_options(config),
                )
                return
            except APIError as error:
                taken = "port is already allocated" in str(
                    error
                ) or "address already in use" in str(error)
                if not taken or attempt == _PORT_ATTEMPTS - 1:
                    raise
                self.client.containers.get(f"bakery-{config.name}-{version}-{index}").remove(
                    force=True
                )

    def _containers(self, name: str, version: str | None = None) -> list[Container]:
        labels = [f"{APP_LABEL}={name}"] + ([f"{VERSION_LABEL}={version}"] if version else [])
        found = self.client.containers.list(all=True, filters={"label": labels})
        return sorted(found, key=lambda c: c.attrs["Created"])

    def workers(self, name: str) -> list[Worker]:
        with engine_errors(name):
            return [self._worker(container) for container in self._containers(name)]

    def _worker(self, container: Container) -> Worker:
        labels = container.labels
        port = int(labels.get(PORT_LABEL, "0"))
        state = container.attrs["State"]
        restarts = int(container.attrs.get("RestartCount", 0))
        phase, reason = _phase(state, restarts)
        ip = (container.attrs.get("NetworkSettings") or {}).get("IPAddress") or None
        bindings = (container.attrs["HostConfig"].get("PortBindings") or {}).get(f"{port}/tcp")
        host_port = next((b["HostPort"] for b in bindings or () if b.get("HostPort")), None)
        running = phase == "running"
        return Worker(
            status=WorkerStatus(
                worker_id=container.name,
                version=labels.get(VERSION_LABEL) or None,
                phase=phase,
                # the probe reaches the container itself: docker-proxy accepts on the host
                # port even while nothing listens inside
                ready=running and ip is not None and _port_open(ip, port),
                restarts=restarts,
                reason=reason,
            ),
            address=f"127.0.0.1:{host_port}" if running and host_port else None,
            internal_url=f"http://{ip}:{port}" if running and ip else None,
        )

    def logs(self, name: str, previous: bool = False) -> dict[str, list[LogLine]]:
        """Each container's lines, split at its current start: `previous` gives the lines of
        the executions before it (the engine keeps a container's log across restarts)."""
        with engine_errors(name):
            return {c.name: self._lines(c, previous) for c in self._containers(name)}

    @staticmethod
    def _lines(container: Container, previous: bool) -> list[LogLine]:
        try:
            raw = container.logs(stdout=True, stderr=True, timestamps=True)
        except NotFound:
            return []
        entries = [entry.partition(" ") for entry in raw.decode(errors="replace").splitlines()]
        if not container.attrs.get("RestartCount"):
            # never restarted: every line is the current execution's (its first lines may be
            # stamped before the engine records StartedAt, so no split by time here)
            return [] if previous else [LogLine(text, stamp) for stamp, _, text in entries]
        started = _sortable(container.attrs["State"]["StartedAt"])
        return [
            LogLine(text, stamp)
            for stamp, _, text in entries
            if (_sortable(stamp) < started) == previous
        ]

    def stop(self, name: str, version: str | None = None) -> None:
        with engine_errors(name):
            for container in self._containers(name, version):
                container.stop(timeout=_STOP_TIMEOUT)

    def remove(self, name: str, keep_version: str | None = None) -> None:
        with engine_errors(name):
            for container in self._containers(name):
                if keep_version is None or container.labels.get(VERSION_LABEL) != keep_version:
                    container.remove(force=True, v=True)
