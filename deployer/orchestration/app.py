"""`AppDeployer` and `DeployedApp`: the reference API, over any runtime.

The bookkeeping lives here, once: the app's record (`records`), the upgrade lock
(`upgrades`), readiness (`readiness`) and the switch of the public URL to a new version only
once it is ready, so the old version serves until then. Runtimes (`deployer.runtimes`) only
start, observe, stop and expose workers.
"""

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from deployer.exceptions import (
    AppCrashLoopException,
    AppDeletedDuringDeploymentException,
    AppDeploymentException,
    AppNotFoundException,
    AppReadinessException,
)
from deployer.host.auth import api_auth_headers, new_token
from deployer.host.proxy import free_port
from deployer.model.config import AppConfig
from deployer.orchestration.lifecycle import current_run
from deployer.orchestration.readiness import Snapshot, check_condition, wait_until_ready
from deployer.orchestration.records import AppRecord, RecordStore, Upgrade
from deployer.orchestration.upgrades import claim, release, still_ours
from deployer.runtimes import as_runtime
from deployer.runtimes.base import LogLine, Runtime, Worker

_print_to_stderr = functools.partial(print, file=sys.stderr)
_TOKEN_AUTH = ("API", "BrowserAndApi")


def version_of(config: AppConfig) -> str:
    """A version is the config's content: equal configs deploy the same version."""
    return config.config_digest[:12]


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
        if record.auth_type not in _TOKEN_AUTH or record.api_token is None:
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


def _matches(record: AppRecord, tags: Sequence[Mapping[str, str]]) -> bool:
    return all(record.tags.get(key) == value for tag in tags for key, value in tag.items())


class AppDeployer:
    """Takes the reference's keyword arguments, validated at once by `AppConfig`.

    `runtime` picks where the app runs: "docker", "process", "kubernetes" or a `Runtime`
    object; by default `BAKERY_RUNTIME`, else docker where an engine answers, else local
    processes (chosen at deploy time).
    """

    def __init__(self, *, runtime: Runtime | str | None = None, **kwargs: Any) -> None:
        dependencies = kwargs.get("depends_on") or []
        self._dependencies = [d for d in dependencies if isinstance(d, AppDeployer)]
        if dependencies:
            kwargs["depends_on"] = [_dependency_name(d) for d in dependencies]
        self.config = AppConfig.from_kwargs(**kwargs)
        self._runtime = None if runtime is None else as_runtime(runtime)

    @classmethod
    def from_config(cls, config: AppConfig, runtime: Runtime | str | None = None) -> "AppDeployer":
        """A deployer for an already validated config (e.g. from a deployment spec)."""
        deployer = cls.__new__(cls)
        deployer.config, deployer._dependencies = config, []
        deployer._runtime = None if runtime is None else as_runtime(runtime)
        return deployer

    def deploy(
        self,
        readiness_condition: str = "at_least_one_running",
        max_wait_time: float = 600,
        readiness_wait_time: float = 10,
        logger_fn: Callable[[str], Any] = _print_to_stderr,
    ) -> DeployedApp:
        """Start a new version, wait until `readiness_condition` holds, then switch the
        public URL to it and retire older versions. An unchanged config is a no-op.

        With `depends_on`, the dependencies (AppDeployers given there) are deployed first,
        in parallel where independent, and their URLs passed in (`deployer.orchestration.plan`).
        Deployment failures carry `deployed_app`, so callers can read its logs and replicas;
        the version that was serving before keeps serving.
        """
        options = {
            "readiness_condition": readiness_condition,
            "max_wait_time": max_wait_time,
            "readiness_wait_time": readiness_wait_time,
            "logger_fn": logger_fn,
        }
        if not self.config.depends_on:
            return self.deploy_alone(**options)
        from deployer.orchestration.plan import (
            deploy_plan,
        )  # the plan deploys AppDeployers: import late

        configs = [_in_run(deployer.config) for deployer in self._closure()]
        return deploy_plan(configs, self._runtime or as_runtime(None), **options)[self.config.name]

    def _closure(self) -> list["AppDeployer"]:
        """This deployer and every AppDeployer it depends on, directly or not."""
        found: dict[str, AppDeployer] = {}
        pending = [self]
        while pending:
            deployer = pending.pop()
            if found.setdefault(deployer.config.name, deployer) is deployer:
                pending.extend(deployer._dependencies)
        return list(found.values())

    def deploy_alone(
        self,
        readiness_condition: str = "at_least_one_running",
        max_wait_time: float = 600,
        readiness_wait_time: float = 10,
        logger_fn: Callable[[str], Any] = _print_to_stderr,
    ) -> DeployedApp:
        """`deploy` of this app only: its dependencies must be running already."""
        config = _in_run(self.config)
        condition = check_condition(readiness_condition)
        runtime = self._runtime or as_runtime(None)
        _note_runtime(runtime)
        runtime.refuse_unsupported(config)
        config.required_code_package()
        runtime.ping()
        name, version = config.name, version_of(config)
        store = RecordStore(runtime.kind)
        upgrade = claim(
            store, name, version, force=config.force_upgrade, max_wait_time=max_wait_time
        )
        app = DeployedApp(runtime, name, version)
        try:
            _register(store, upgrade, config)
            logger_fn(f"deploying app {name!r} version {version} on {runtime.kind}")
            runtime.start(config, version)
            if condition == "async":
                self._serve(store, runtime, version)
                return app
            wait_until_ready(
                lambda: self._poll(store, runtime, upgrade),
                condition,
                app_id=name,
                version=version,
                max_wait_time=max_wait_time,
                readiness_wait_time=readiness_wait_time,
                logger_fn=logger_fn,
                logs_fn=lambda worker_id: _crash_logs(runtime, name, worker_id),
                deployed_app=app,
            )
            self._serve(store, runtime, version)
            return app
        except AppCrashLoopException as error:
            runtime.stop(name, version)  # no restart storm; logs stay readable
            raise _with_app(error, app) from None
        except AppReadinessException as error:
            record = store.get(name)
            if record is not None and record.version is None:
                self._serve(store, runtime, version)  # nothing else to serve: may come up later
            raise _with_app(error, app) from None
        except AppDeploymentException as error:
            raise _with_app(error, app) from None
        finally:
            release(store, name, upgrade)

    def _poll(self, store: RecordStore, runtime: Runtime, upgrade: Upgrade) -> Snapshot | None:
        record = store.get(self.config.name)
        if record is None:
            return None
        still_ours(record, upgrade)
        workers = runtime.workers(self.config.name)
        return Snapshot(
            version=upgrade.version,
            min_replicas=self.config.replicas.min,
            workers=tuple(worker.status for worker in workers),
        )

    def _serve(self, store: RecordStore, runtime: Runtime, version: str) -> None:
        """Point the public URL at `version`'s workers, then remove every other version."""
        name = self.config.name
        with store.locked(name):
            record = store.get(name)
            if record is None:
                return
            workers = [w for w in runtime.workers(name) if w.version == version]
            runtime.expose(record, workers)
            record.version = version
            record.scaled_to_zero = False
            store.put(record)
            runtime.remove(name, keep_version=version)

    @staticmethod
    def get(name: str, runtime: Runtime | str | None = None) -> DeployedApp:
        """The app called `name` at its serving version, from any Python process."""
        runtime = as_runtime(runtime)
        record = RecordStore(runtime.kind).get(name)
        if record is None:
            raise AppNotFoundException(name)
        return DeployedApp(runtime, name, record.version or record.attempted_version)

    @staticmethod
    def list_deployments(
        name: str | None = None,
        project: str | None = None,
        branch: str | None = None,
        tags: Sequence[Mapping[str, str]] | None = None,
        runtime: Runtime | str | None = None,
    ) -> list[DeployedApp]:
        """Apps matching every given filter; `tags` match when the app has all of them."""
        runtime = as_runtime(runtime)
        return [
            DeployedApp(runtime, record.name, record.version or record.attempted_version)
            for record in RecordStore(runtime.kind).all()
            if (name is None or record.name == name)
            and (project is None or record.project == project)
            and (branch is None or record.branch == branch)
            and _matches(record, tags or [])
        ]


def _register(store: RecordStore, upgrade: Upgrade, config: AppConfig) -> None:
    """Write this deployment's config into the app's record, if the claim is still ours."""
    with store.locked(config.name):
        record = store.get(config.name)
        if record is None:
            raise AppDeletedDuringDeploymentException(config.name)
        still_ours(record, upgrade)
        record.spec = config.model_dump(mode="json", exclude={"force_upgrade"})
        record.tags = dict(config.tags)
        record.project, record.branch = config.project, config.branch
        record.auth_type = config.auth.type
        if config.auth.type in _TOKEN_AUTH and record.api_token is None:
            record.api_token = new_token()
        if record.public_port is None:
            record.public_port = free_port()
        store.put(record)


def _in_run(config: AppConfig) -> AppConfig:
    """Inside `app_deploy`, apps carry the run's tag."""
    run = current_run.get()
    return run.tagged(config) if run is not None else config


def _note_runtime(runtime: Runtime) -> None:
    """Inside `app_deploy`, the run cleans up on every runtime its apps were deployed on."""
    run = current_run.get()
    if run is not None:
        run.used(runtime)


def _dependency_name(dependency: object) -> object:
    """depends_on takes app names or AppDeployers; the config keeps names."""
    return dependency.config.name if isinstance(dependency, AppDeployer) else dependency


def _crash_logs(runtime: Runtime, name: str, worker_id: str) -> list[LogLine]:
    """The crashed worker's latest lines: its current execution's, else the ones before."""
    for previous in (False, True):
        lines = runtime.logs(name, previous).get(worker_id, [])
        if lines:
            return lines
    return []


def _with_app(error: AppDeploymentException, app: DeployedApp) -> AppDeploymentException:
    if error.deployed_app is None:
        error.deployed_app = app
    return error
