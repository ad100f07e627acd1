"""The process runtime: an app's replicas as processes on this machine, for development.

No engine: each replica is `/bin/sh -c "<commands joined with &&>"` in the app version's
code directory, with a host venv built from the baked image's Python layers first on PATH
(`env.py`), its own free port in `$PORT`, and the app's environment and secrets. Workers are
named `<app>-<version>-<i>` and recorded on disk (`state.py`), so any later Python process
observes, stops and removes them; their output goes to a log file per worker.

There is no supervisor: a worker whose command exits stays down, reported as "crashloop" with
its exit code and 0 restarts, until the next `start` of its version launches it again (and
keeps the log of the run that ended as its previous log). Nothing isolates or limits the
processes, so resource limits are refused rather than ignored. The public URL is a local
nginx (`deployer.host.proxy`), which also does the API auth.

Workers share the host's network, so a worker listening on every interface would be
reachable around that proxy and its auth. They listen on loopback only: `HOST=127.0.0.1`
tells apps that read it, the env's loopback guard (`loopback.py`) moves Python servers'
binds to loopback, and a worker whose port still listens beyond loopback (a server the guard
cannot see) is reported `failed`, so the deployer stops it instead of serving it.
"""

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deployer.host.procfs import is_loopback, tcp_listeners
from deployer.host.proxy import LocalProxy, free_port
from deployer.host.secrets import SecretStore
from deployer.model.config import AppConfig
from deployer.orchestration.readiness import WorkerStatus
from deployer.runtimes.base import LogLine, Worker
from deployer.runtimes.local import ProxyExposure, local_code, refuse
from deployer.runtimes.process import loopback
from deployer.runtimes.process.env import host_env
from deployer.runtimes.process.processes import alive, launch, stop_groups
from deployer.runtimes.process.state import WorkerRecord, WorkerStore
from stagekit.progress import Reporter

_STOP_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL."""
_PROBE_TIMEOUT = 0.5
LOOPBACK = "127.0.0.1"


class ProcessRuntime(ProxyExposure):
    """Starts, observes, stops and removes an app's worker processes, and exposes them."""

    kind = "process"

    def __init__(self, logger: Callable[[str], Any] | None = None) -> None:
        """`logger` gets progress messages (building an environment); default: logging."""
        self.reporter = Reporter("deployer.process", logger)
        self.store = WorkerStore()
        self.proxy = LocalProxy(self.kind)

    def ping(self) -> None:
        """Nothing to reach: the runtime is this machine."""

    def refuse_unsupported(self, config: AppConfig) -> None:
        limits = [
            f"resources.{field}: the process runtime runs plain host processes and cannot "
            "enforce limits; drop it, or use the docker runtime"
            for field, quantity in config.resources
            if quantity is not None
        ]
        refuse(config, "process", limits)

    def start(self, config: AppConfig, version: str) -> None:
        """Launch `version`'s workers that do not run; running ones are left alone."""
        self.refuse_unsupported(config)
        assert config.image is not None  # refuse_unsupported checked it
        package = config.required_code_package()
        secrets = SecretStore().environment(config.secrets)
        venv = host_env(config.image, self.reporter)
        code = local_code(config.name, version, package)
        environment = {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "HOME": os.environ.get("HOME") or str(Path.home()),
            "LANG": os.environ.get("LANG") or "C.UTF-8",
            **config.environment,
            **secrets,
            "VIRTUAL_ENV": str(venv),
            "HOST": LOOPBACK,
            loopback.VARIABLE: "1",
        }
        command = " && ".join(config.commands)
        with self.store.locked(config.name):
            running = {
                record.worker_id: record.port
                for record in self.store.all(config.name)
                if not record.stopped and alive(record.pid, record.start_ticks)
            }
            ports = set(running.values())
            for index in range(max(config.replicas.min, 1)):
                worker_id = f"{config.name}-{version}-{index}"
                if worker_id in running:
                    continue
                port = _unused_port(ports)
                ports.add(port)
                log, exit_file = self.store.new_execution(config.name, worker_id)
                env = {**environment, "PORT": str(port)}
                launched = launch(command, cwd=code, env=env, log=log, exit_file=exit_file)
                self.store.put(
                    WorkerRecord(
                        worker_id=worker_id,
                        app=config.name,
                        version=version,
                        index=index,
                        pid=launched.pid,
                        pgid=launched.pgid,
                        start_ticks=launched.start_ticks,
                        port=port,
                        started_at=launched.started_at,
                    )
                )

    def workers(self, name: str) -> list[Worker]:
        return [self._worker(record) for record in self.store.all(name)]

    def _worker(self, record: WorkerRecord) -> Worker:
        if not record.stopped and alive(record.pid, record.start_ticks):
            ready = _port_open(record.port)
            # read after the probe: a server that answered it is in the table by now
            listening = tcp_listeners().get(record.port, set())
            exposed = sorted(str(a) for a in listening if not is_loopback(a))
            if exposed:
                reason = (
                    f"listens on {', '.join(exposed)} port {record.port}, where the network "
                    "reaches it without the app's proxy and its auth; the process runtime "
                    f"serves loopback only: bind $HOST ({LOOPBACK})"
                )
                return Worker(
                    WorkerStatus(record.worker_id, record.version, "failed", False, reason=reason)
                )
            address = f"{LOOPBACK}:{record.port}"
            status = WorkerStatus(record.worker_id, record.version, "running", ready)
            return Worker(status, address, f"http://{address}")
        if record.stopped:
            status = WorkerStatus(
                record.worker_id, record.version, "terminated", False, reason="stopped"
            )
            return Worker(status)
        code = self.store.exit_code(record)
        reason = (
            f"command exited with code {code}"
            if code is not None
            else "its process ended without an exit code (killed, or the machine restarted)"
        )
        return Worker(
            WorkerStatus(record.worker_id, record.version, "crashloop", False, reason=reason)
        )

    def logs(self, name: str, previous: bool = False) -> dict[str, list[LogLine]]:
        return {
            record.worker_id: _lines(self.store.log(name, record.worker_id, previous))
            for record in self.store.all(name)
        }

    def stop(self, name: str, version: str | None = None) -> None:
        with self.store.locked(name):
            records = [r for r in self.store.all(name) if version in (None, r.version)]
            self._stop(records)
            for record in records:
                self.store.put(record.model_copy(update={"stopped": True}))

    def remove(self, name: str, keep_version: str | None = None) -> None:
        with self.store.locked(name):
            records = [r for r in self.store.all(name) if r.version != keep_version]
            self._stop(records)
            for record in records:
                self.store.forget(record)

    @staticmethod
    def _stop(records: Sequence[WorkerRecord]) -> None:
        live = [r for r in records if not r.stopped and alive(r.pid, r.start_ticks)]
        stop_groups([record.pgid for record in live], _STOP_GRACE)


def _unused_port(taken: set[int]) -> int:
    """A free port none of the app's workers was given: one not yet listening may look free."""
    while (port := free_port()) in taken:
        pass
    return port


def _port_open(port: int) -> bool:
    """Readiness: something accepts TCP connections on the worker's port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _lines(path: Path) -> list[LogLine]:
    """A log file's lines; the process runtime has no per-line timestamps."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [LogLine(line) for line in text.splitlines()]
