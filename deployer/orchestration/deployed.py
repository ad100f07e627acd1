"""`DeployedApp`: an app the deployer knows, read back from its record and its runtime.

Deploying (`deploy`, `plan`, `app`) hands these out, and `find_apps` finds them again from
any process, so nothing here deploys anything.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from deployer.exceptions import AppNotFoundException
from deployer.host.auth import api_auth_headers
from deployer.model.auth_types import TOKEN_AUTH_TYPES
from deployer.orchestration.records import AppRecord, RecordStore
from deployer.runtimes.base import LogLine, Runtime, Worker


class DeployedApp:
    """A deployed app at one version; every property reads the runtime and record afresh."""

    def __init__(self, runtime: Runtime, name: str, version: str | None) -> None:
        self._runtime = runtime
        self._store = RecordStore(runtime.kind)
        self.name = name
        self.deployed_version = version

    def _record(self) -> AppRecord:
        record = self._store.get(self.name)
        if record is None:
            raise AppNotFoundException(self.name)
        return record

    @property
    def id(self) -> str:
        return self._record().id

    @property
    def auth_type(self) -> str:
        return self._record().auth_type

    @property
    def tags(self) -> list[dict[str, str]]:
        """The app's tags in the shape they were given: [{key: value}, ...]."""
        return [{key: value} for key, value in self._record().tags.items()]

    @property
    def public_url(self) -> str | None:
        """Where users reach the app; None once deleted or before any version was exposed."""
        record = self._store.get(self.name)
        return self._runtime.public_url(record) if record is not None else None

    @property
    def internal_url(self) -> str | None:
        """Where other apps on the runtime reach this one, no auth needed: the app's own
        address where the runtime has one (a Kubernetes Service), else a running worker's."""
        return self._runtime.internal_url(self.name) or next(
            (w.internal_url for w in self._workers() if w.internal_url), None
        )

    def _workers(self) -> list[Worker]:
        return [w for w in self._runtime.workers(self.name) if w.version == self.deployed_version]

    def replicas(self) -> list[dict[str, Any]]:
        """This version's workers as dicts: workerId, status, ready, restarts, reason, ..."""
        return [worker.as_dict() for worker in self._workers()]

    def logs(self, previous: bool = False) -> dict[str, list[LogLine]]:
        """{worker_id: [line, ...]} for this version's workers; `previous` gives each
        worker's lines from before its current execution (e.g. before a crash restart)."""
        wanted = {w.worker_id for w in self._workers()}
        return {k: v for k, v in self._runtime.logs(self.name, previous).items() if k in wanted}

    def info(self) -> dict[str, Any]:
        """Everything known: spec (the config), status (versions, workers), metadata."""
        record = self._record()
        return {
            "id": record.id,
            "name": record.name,
            "runtime": record.runtime,
            "spec": record.spec,
            "status": {
                "state": _state(record),
                "serving_version": record.version,
                "attempted_version": record.attempted_version,
                "upgrade_in_progress_by": record.upgrade.by if record.upgrade else None,
                "public_url": self._runtime.public_url(record),
                "replicas": [w.as_dict() for w in self._runtime.workers(self.name)],
            },
            "metadata": {
                "tags": record.tags,
                "project": record.project,
                "branch": record.branch,
                "auth_type": record.auth_type,
                "deployed_by": record.deployed_by,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
            },
        }

    def scale_to_zero(self) -> None:
        """Stop every worker but keep the app: its config, URL (answering 503) and logs.
        Deploying it again scales it back up."""
        record = self._record()
        with self._store.locked(self.name):
            self._runtime.stop(self.name)
            self._runtime.expose(record, [])
            record.scaled_to_zero = True
            self._store.put(record)

    def delete(self) -> None:
        """Remove the app: workers of every version, its URL and its record."""
        with self._store.locked(self.name):
            record = self._store.get(self.name)
            self._runtime.remove(self.name)
            if record is not None:
                self._runtime.unexpose(record)
            self._store.delete(self.name)

    def auth(self) -> dict[str, str]:
        """Headers that pass the app's API auth; ValueError unless its auth type is API."""
        record = self._record()
        if record.auth_type not in TOKEN_AUTH_TYPES or record.api_token is None:
            raise ValueError(
                f"app {self.name!r} uses {record.auth_type} auth; auth() headers exist only "
                "for apps deployed with auth={'type': 'API'}"
            )
        return api_auth_headers(record.api_token)

    def __repr__(self) -> str:
        return f"DeployedApp(name={self.name!r}, version={self.deployed_version!r})"


def _state(record: AppRecord) -> str:
    if record.upgrade is not None:
        return "deploying"
    if record.scaled_to_zero:
        return "scaled_to_zero"
    return "serving" if record.version else "not_ready"


def _at_latest_version(runtime: Runtime, record: AppRecord) -> DeployedApp:
    """The app at its serving version, else at the one being attempted."""
    return DeployedApp(runtime, record.name, record.version or record.attempted_version)


def get_app(name: str, runtime: Runtime) -> DeployedApp:
    """The app called `name` on `runtime`; `AppNotFoundException` if it has no record."""
    record = RecordStore(runtime.kind).get(name)
    if record is None:
        raise AppNotFoundException(name)
    return _at_latest_version(runtime, record)


def find_apps(
    runtime: Runtime,
    *,
    name: str | None = None,
    project: str | None = None,
    branch: str | None = None,
    tags: Sequence[Mapping[str, str]] = (),
) -> list[DeployedApp]:
    """Apps on `runtime` matching every given filter; `tags` match when the app has all."""
    return [
        _at_latest_version(runtime, record)
        for record in RecordStore(runtime.kind).all()
        if (name is None or record.name == name)
        and (project is None or record.project == project)
        and (branch is None or record.branch == branch)
        and all(record.tags.get(key) == value for tag in tags for key, value in tag.items())
    ]
