"""Deploy an `AppConfig` as containers on the Docker Engine and observe them.

One container per replica, named `bakery-<app>-<version>-<i>` and labelled with the app,
its version and its tags, so the engine itself is the record of what is deployed: a new
Python process finds the app again by its labels. The version is the start of the config
digest, so re-deploying an unchanged config finds its own containers and changes nothing.

The code package is fetched (and verified) on the host once per version and bind-mounted
read-only at /app; this assumes the engine runs on this machine, as a local runtime does.
"""

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.config import AppConfig
from deployer.exceptions import AppConfigError, AppCreationFailedException
from deployer.readiness import Phase, Snapshot, WorkerStatus
from deployer.runtimes.docker.engine import DockerEngine, DockerError
from packager.fetch import fetch_code
from stagekit.dirs import cache_dir

APP_LABEL = "bakery.app"
VERSION_LABEL = "bakery.version"
MIN_REPLICAS_LABEL = "bakery.min-replicas"
PORT_LABEL = "bakery.port"
PROJECT_LABEL = "bakery.project"
BRANCH_LABEL = "bakery.branch"
TAG_PREFIX = "bakery.tag."
WORKDIR = "/app"
_VERSION_CHARS = 12
_PROBE_TIMEOUT = 0.5


@dataclass(frozen=True)
class Replica:
    """One container as the deployer reports it."""

    worker_id: str
    container_id: str
    version: str
    port: int
    status: str
    host_port: int | None
    ip_address: str | None

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.host_port}" if self.host_port else None


def version_of(config: AppConfig) -> str:
    """A version is the config's content: equal configs deploy the same version."""
    return config.config_digest[:_VERSION_CHARS]


def labels_for(config: AppConfig, version: str) -> dict[str, str]:
    labels = {
        APP_LABEL: config.name,
        VERSION_LABEL: version,
        MIN_REPLICAS_LABEL: str(config.replicas.min),
        PORT_LABEL: str(config.port),
    }
    if config.project:
        labels[PROJECT_LABEL] = config.project
    if config.branch:
        labels[BRANCH_LABEL] = config.branch
    labels.update({f"{TAG_PREFIX}{key}": value for key, value in config.tags.items()})
    return labels


def resource_flags(config: AppConfig) -> list[str]:
    """cpu, memory and shared_memory as `docker run` limits (bytes and CPUs, exactly)."""
    resources = config.resources
    flags = []
    if resources.cpu is not None:
        flags.append(f"--cpus={resources.cpu.value / 1000}")
    if resources.memory is not None:
        flags.append(f"--memory={resources.memory.value}b")
    if resources.shared_memory is not None:
        flags.append(f"--shm-size={resources.shared_memory.value}b")
    return flags


def refuse_unsupported(config: AppConfig) -> None:
    """Parameters this slice cannot honour are refused, never silently dropped."""
    problems = []
    if config.image is None:
        problems.append("image: the docker runtime needs a baked image (image=baked.image)")
    if not config.commands:
        problems.append("commands: give the command that starts the app, e.g. ['python app.py']")
    if config.secrets:
        problems.append("secrets: the docker runtime has no secrets store yet")
    if config.auth.type != "Browser" or not config.auth.public:
        problems.append("auth: the docker runtime has no authenticating proxy yet")
    if config.compute_pools:
        problems.append("compute_pools: the docker runtime has a single engine, no pools")
    if config.persistence:
        problems.append("persistence: not supported by the docker runtime yet")
    if config.models or config.data:
        problems.append("models/data: not supported by the docker runtime yet")
    if config.resources.gpu is not None or config.resources.disk is not None:
        problems.append("resources.gpu/disk: not supported by the docker runtime")
    if config.depends_on:
        problems.append("depends_on: deploy dependencies first; plans are not wired in yet")
    if problems:
        raise AppConfigError(f"app {config.name!r} cannot run on docker:", problems)


def _phase(state: Mapping[str, Any]) -> tuple[Phase, str | None]:
    """Container state → readiness phase: any exit of a server counts as a crash."""
    status = state.get("Status", "")
    if status == "running" and state.get("Running"):
        return "running", None
    if status in ("created", "paused"):
        return "pending", f"container is {status}"
    if status in ("exited", "restarting"):
        return "crashloop", f"command exited with code {state.get('ExitCode')}"
    if status == "removing":
        return "terminated", "container is being removed"
    return "failed", f"container is {status or 'in an unknown state'}: {state.get('Error', '')}"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


class DockerRuntime:
    """Start, observe and remove an app's containers; one engine, no state of its own."""

    def __init__(self, engine: DockerEngine | None = None) -> None:
        self.engine = engine or DockerEngine()

    def deploy(self, config: AppConfig) -> str:
        """Start `config`'s version, unless its containers already run; returns the version.

        Containers of other versions are left alone: they keep serving until the caller
        `retire`s them once the new version is ready.
        """
        refuse_unsupported(config)
        package = config.required_code_package()
        self.engine.ping()
        version = version_of(config)
        existing = self._inspect({APP_LABEL: config.name, VERSION_LABEL: version})
        if existing and all(c["State"].get("Status") != "exited" for c in existing):
            return version  # unchanged config: a no-op deploy
        self.engine.remove([c["Id"] for c in existing])
        code = self._fetch(config.name, version, package.url, package.key)
        labels = labels_for(config, version)
        command = " && ".join(config.commands)
        assert config.image is not None  # refuse_unsupported checked it
        for index in range(max(config.replicas.min, 1)):
            try:
                self.engine.run(
                    config.image,
                    ["/bin/sh", "-c", command],
                    name=f"bakery-{config.name}-{version}-{index}",
                    labels=labels,
                    env={**config.environment, "PORT": str(config.port)},
                    mounts=[f"type=bind,source={code},target={WORKDIR},readonly"],
                    workdir=WORKDIR,
                    publish=[f"127.0.0.1::{config.port}"],
                    limits=resource_flags(config),
                )
            except DockerError as error:
                raise AppCreationFailedException(
                    config.name, error.returncode, error.stderr.strip()
                ) from None
        return version

    def _fetch(self, name: str, version: str, url: str, key: str) -> Path:
        """The version's code on the host, fetched and verified once per version."""
        code = cache_dir() / "deployer" / name / version / "code"
        if code.is_dir() and any(code.iterdir()):
            return code  # fetch_code renames into place only after verifying every file
        return fetch_code(url, key, code)

    def _inspect(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.engine.inspect(self.engine.list_ids(labels))

    def replicas(self, name: str) -> list[Replica]:
        """All containers of the app, any version, oldest first."""
        containers = sorted(self._inspect({APP_LABEL: name}), key=lambda c: c["Created"])
        return [self._replica(c) for c in containers]

    def _replica(self, container: Mapping[str, Any]) -> Replica:
        labels = container["Config"]["Labels"]
        network = container.get("NetworkSettings") or {}
        bindings = (network.get("Ports") or {}).get(f"{labels.get(PORT_LABEL)}/tcp") or []
        host_port = next((int(b["HostPort"]) for b in bindings if b.get("HostPort")), None)
        return Replica(
            worker_id=container["Name"].lstrip("/"),
            container_id=container["Id"],
            version=labels.get(VERSION_LABEL, ""),
            port=int(labels.get(PORT_LABEL, "0")),
            status=container["State"].get("Status", ""),
            host_port=host_port,
            ip_address=network.get("IPAddress") or None,
        )

    def snapshot(self, name: str) -> Snapshot | None:
        """What the engine shows for the app now; None once it has no containers."""
        containers = sorted(self._inspect({APP_LABEL: name}), key=lambda c: c["Created"])
        if not containers:
            return None
        newest = containers[-1]["Config"]["Labels"]
        return Snapshot(
            version=newest.get(VERSION_LABEL, ""),
            min_replicas=int(newest.get(MIN_REPLICAS_LABEL, "1")),
            workers=tuple(self._worker(c) for c in containers),
        )

    def _worker(self, container: Mapping[str, Any]) -> WorkerStatus:
        replica = self._replica(container)
        phase, reason = _phase(container["State"])
        return WorkerStatus(
            worker_id=replica.worker_id,
            version=replica.version or None,
            phase=phase,
            ready=phase == "running" and self._probe(replica),
            restarts=int(container.get("RestartCount", 0)),
            reason=reason,
        )

    @staticmethod
    def _probe(replica: Replica) -> bool:
        """TCP readiness on the container's own address, as a kubelet probes a pod.

        The published host port is no probe: docker-proxy accepts connections on it even
        while nothing listens inside the container. It is the fallback only when the engine
        reports no container address.
        """
        if replica.ip_address:
            return _port_open(replica.ip_address, replica.port)
        return replica.host_port is not None and _port_open("127.0.0.1", replica.host_port)

    def logs(self, name: str) -> dict[str, list[str]]:
        """Each container's log lines, keyed by worker id."""
        return {r.worker_id: self.engine.logs(r.container_id) for r in self.replicas(name)}

    def worker_logs(self, name: str, worker_id: str) -> list[str]:
        return self.logs(name).get(worker_id, [])

    def retire(self, name: str, keep_version: str) -> None:
        """Remove the app's containers of every version but `keep_version`."""
        old = [r.container_id for r in self.replicas(name) if r.version != keep_version]
        self.engine.remove(old)

    def delete(self, name: str) -> None:
        """Remove every container of the app; the fetched code stays cached."""
        self.engine.remove([r.container_id for r in self.replicas(name)])
