"""The interface every runtime implements, and the values they report.

`deploy_one` (`deployer.orchestration.deploy`) does the bookkeeping (records, upgrade lock,
readiness, exposure order) once; a runtime only starts, observes, stops and removes one
app's workers, and exposes them.
Workers carry their version, so old and new versions can run side by side during an upgrade.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from deployer.model.config import AppConfig
from deployer.orchestration.readiness import WorkerStatus
from deployer.orchestration.records import AppRecord


class LogLine(str):
    """One log line: prints and compares as its text, and keeps the runtime's timestamp."""

    timestamp: str | None

    def __new__(cls, text: str, timestamp: str | None = None) -> "LogLine":
        line = super().__new__(cls, text)
        line.timestamp = timestamp
        return line


@dataclass(frozen=True)
class Worker:
    """One replica: its readiness status, and where the proxy and other apps reach it."""

    status: WorkerStatus
    address: str | None = None
    """host:port on this machine that serves the app (local runtimes), None while stopped."""
    internal_url: str | None = None
    """URL other apps on the same runtime use to reach this worker directly."""

    @property
    def worker_id(self) -> str:
        return self.status.worker_id

    @property
    def version(self) -> str | None:
        return self.status.version

    def as_dict(self) -> dict[str, Any]:
        """The reference's replica dict: `workerId`, `status`, and what else we know."""
        return {
            "workerId": self.status.worker_id,
            "status": self.status.phase,
            "ready": self.status.ready,
            "version": self.status.version,
            "restarts": self.status.restarts,
            "reason": self.status.reason,
            "address": self.address,
            "internalUrl": self.internal_url,
        }


@runtime_checkable
class Runtime(Protocol):
    """Where apps run. Every method is about one app, named by `AppConfig.name`."""

    kind: str
    """"docker", "process" or "kubernetes": names the runtime in records and messages."""

    def ping(self) -> None:
        """Raise `BackendUnhealthyException` when the runtime cannot be reached."""

    def refuse_unsupported(self, config: AppConfig) -> None:
        """Raise `AppConfigError` listing every parameter this runtime cannot honour."""

    def start(self, config: AppConfig, version: str) -> None:
        """Make `version`'s workers exist and run; workers already running are kept."""

    def workers(self, name: str) -> list[Worker]:
        """Every worker of the app, of every version, oldest first."""

    def logs(self, name: str, previous: bool = False) -> dict[str, list[LogLine]]:
        """{worker_id: lines}; `previous` gives what came before the current execution."""

    def stop(self, name: str, version: str | None = None) -> None:
        """Stop workers (of `version`, or all) but keep them, with their logs."""

    def remove(self, name: str, keep_version: str | None = None) -> None:
        """Remove the app's workers of every version except `keep_version` (None: all)."""

    def expose(self, record: AppRecord, workers: Sequence[Worker]) -> None:
        """Route the app's public URL to `workers` (the serving version's running ones)."""

    def public_url(self, record: AppRecord) -> str | None:
        """Where users reach the app, None when it is not exposed."""

    def internal_url(self, name: str) -> str | None:
        """Where other apps on this runtime reach the app as a whole, without auth (a
        Kubernetes Service); None where only each worker has an address (`Worker.internal_url`)."""

    def unexpose(self, record: AppRecord) -> None:
        """Take the public URL down."""
