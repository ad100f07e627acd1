"""`deploy_one`: deploy one app whose dependencies already run, on any runtime.

The one place a deployment happens: `AppDeployer.deploy` calls it for an app alone and the
plan (`plan.deploy_plan`) for each app of its waves. The bookkeeping lives here, once: the
app's record (`records`), the upgrade lock (`upgrades`), readiness (`readiness`) and the
switch of the public URL to a new version only once it is ready, so the old version serves
until then. Runtimes (`deployer.runtimes`) only start, observe, stop and expose workers.
"""

from collections.abc import Callable
from typing import Any

from deployer.exceptions import (
    AppCrashLoopException,
    AppDeletedDuringDeploymentException,
    AppDeploymentException,
    AppReadinessException,
)
from deployer.host.auth import new_token
from deployer.host.proxy import free_port
from deployer.model.auth_types import TOKEN_AUTH_TYPES
from deployer.model.config import AppConfig
from deployer.orchestration.deployed import DeployedApp
from deployer.orchestration.lifecycle import in_current_run, note_runtime
from deployer.orchestration.readiness import (
    DEFAULT_CONDITION,
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_READINESS_WAIT_TIME,
    Snapshot,
    check_condition,
    print_to_stderr,
    wait_until_ready,
)
from deployer.orchestration.records import RecordStore, Upgrade
from deployer.orchestration.upgrades import claim, release, still_ours
from deployer.runtimes.base import LogLine, Runtime


def version_of(config: AppConfig) -> str:
    """A version is the config's content: equal configs deploy the same version."""
    return config.config_digest[:12]


def deploy_one(
    config: AppConfig,
    runtime: Runtime,
    *,
    readiness_condition: str = DEFAULT_CONDITION,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    readiness_wait_time: float = DEFAULT_READINESS_WAIT_TIME,
    logger_fn: Callable[[str], Any] = print_to_stderr,
) -> DeployedApp:
    """Start a new version of `config`'s app, wait until `readiness_condition` holds, then
    switch its public URL to it and retire older versions; an unchanged config is a no-op.

    Its `depends_on` apps must run already. Deployment failures carry `deployed_app`, so
    callers can read its logs and replicas; the version that was serving keeps serving.
    """
    config = in_current_run(config)
    condition = check_condition(readiness_condition)
    note_runtime(runtime)
    runtime.refuse_unsupported(config)
    config.required_code_package()
    runtime.ping()
    name, version = config.name, version_of(config)
    store = RecordStore(runtime.kind)
    upgrade = claim(store, name, version, force=config.force_upgrade, max_wait_time=max_wait_time)
    app = DeployedApp(runtime, name, version)
    try:
        _register(store, upgrade, config)
        logger_fn(f"deploying app {name!r} version {version} on {runtime.kind}")
        runtime.start(config, version)
        if condition == "async":
            _serve(store, runtime, name, version)
            return app
        wait_until_ready(
            lambda: _poll(store, runtime, config, upgrade),
            condition,
            app_id=name,
            version=version,
            max_wait_time=max_wait_time,
            readiness_wait_time=readiness_wait_time,
            logger_fn=logger_fn,
            logs_fn=lambda worker_id: _crash_logs(runtime, name, worker_id),
            deployed_app=app,
        )
        _serve(store, runtime, name, version)
        return app
    except AppCrashLoopException as error:
        runtime.stop(name, version)  # no restart storm; logs stay readable
        raise _with_app(error, app) from None
    except AppReadinessException as error:
        record = store.get(name)
        if record is not None and record.version is None:
            _serve(store, runtime, name, version)  # nothing else to serve: may come up later
        raise _with_app(error, app) from None
    except AppDeploymentException as error:
        raise _with_app(error, app) from None
    finally:
        release(store, name, upgrade)


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
        if config.auth.type in TOKEN_AUTH_TYPES and record.api_token is None:
            record.api_token = new_token()
        if record.public_port is None:
            record.public_port = free_port()
        store.put(record)


def _poll(
    store: RecordStore, runtime: Runtime, config: AppConfig, upgrade: Upgrade
) -> Snapshot | None:
    record = store.get(config.name)
    if record is None:
        return None
    still_ours(record, upgrade)
    workers = runtime.workers(config.name)
    return Snapshot(
        version=upgrade.version,
        min_replicas=config.replicas.min,
        workers=tuple(worker.status for worker in workers),
    )


def _serve(store: RecordStore, runtime: Runtime, name: str, version: str) -> None:
    """Point the public URL at `version`'s workers, then remove every other version."""
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


CRASH_LOG_LINES = 200
"""The crashed worker's last lines an AppCrashLoopException carries."""


def _crash_logs(runtime: Runtime, name: str, worker_id: str) -> list[LogLine]:
    """The crashed worker's last lines across its executions: the ones before the current
    (each ended in the crash) and the current one's so far. The current one alone may not
    have printed its error yet, and an engine may stamp an exiting execution's last lines
    after the restart that follows it."""
    before = runtime.logs(name, True).get(worker_id, [])
    now = runtime.logs(name, False).get(worker_id, [])
    return [*before, *now][-CRASH_LOG_LINES:]


def _with_app(error: AppDeploymentException, app: DeployedApp) -> AppDeploymentException:
    if error.deployed_app is None:
        error.deployed_app = app
    return error
