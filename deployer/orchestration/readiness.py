"""The reference API's readiness conditions, as pure functions over snapshots of workers.

Runtimes observe workers differently (containers, pods, processes) but must agree on what
"ready" means: each turns what it sees into a `Snapshot`, and this module decides. So the
four conditions behave identically everywhere and are tested without any engine.
"""

import functools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from deployer.exceptions import (
    AppConcurrentUpgradeException,
    AppConfigError,
    AppCrashLoopException,
    AppDeletedDuringDeploymentException,
    AppReadinessException,
)

Condition = Literal["at_least_one_running", "all_running", "fully_finished", "async"]
CONDITIONS: tuple[str, ...] = get_args(Condition)
Phase = Literal["pending", "running", "crashloop", "failed", "terminated"]
PHASES: tuple[str, ...] = get_args(Phase)
_CRASHED = ("crashloop", "failed")
"""The reference raises a crash loop for a worker in CrashLoopBackOff *or* Failed."""

DEFAULT_CONDITION: Condition = "at_least_one_running"
DEFAULT_MAX_WAIT_TIME = 600
DEFAULT_READINESS_WAIT_TIME = 10
"""The reference's `deploy()` defaults, in seconds: every deploying entry point uses these."""
print_to_stderr = functools.partial(print, file=sys.stderr)
"""The default `logger_fn`: deployment progress goes to stderr, as in the reference."""


@dataclass(frozen=True)
class WorkerStatus:
    """One replica as a runtime sees it; `ready` means its readiness probe on the port passed."""

    worker_id: str
    version: str | None  # None: the runtime cannot tell which version started it
    phase: Phase
    ready: bool
    restarts: int = 0
    reason: str | None = None
    """Why the worker is not simply running, in words a user can act on."""

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"worker phase {self.phase!r} is not one of {', '.join(PHASES)}")

    @property
    def running(self) -> bool:
        return self.phase == "running" and self.ready


@dataclass(frozen=True)
class Snapshot:
    """What a runtime observed at one poll: the app's current version and all its workers."""

    version: str
    min_replicas: int
    workers: tuple[WorkerStatus, ...] = ()


@dataclass(frozen=True)
class ReadinessVerdict:
    """`crashed` is a crashed worker of the deploying version; it overrides `ready`."""

    ready: bool
    waiting_for: str
    crashed: WorkerStatus | None = None


def check_condition(condition: str) -> Condition:
    """The condition itself, or an `AppConfigError` naming the valid ones."""
    for known in get_args(Condition):
        if condition == known:
            return known
    raise AppConfigError(
        f"readiness_condition {condition!r} is unknown; use one of {', '.join(CONDITIONS)}"
    )


def evaluate(
    workers: Sequence[WorkerStatus], version: str, min_replicas: int, condition: str
) -> ReadinessVerdict:
    """Decide `condition` for the workers of `version`, exactly as the reference defines it.

    - at_least_one_running: min(min_replicas, 1) workers of `version` are running.
    - all_running: min_replicas workers of `version` are running.
    - fully_finished: all_running, and no pending or crash-looping (or failed) workers of
      older versions are left.
    - async: ready as soon as the runtime has registered the app; workers are not looked at.
    """
    if check_condition(condition) == "async":
        return ReadinessVerdict(True, "")
    current = sorted((w for w in workers if w.version == version), key=lambda w: w.worker_id)
    for worker in current:
        if worker.phase in _CRASHED:
            return ReadinessVerdict(
                False,
                f"worker {worker.worker_id} of version {version} is {worker.phase} "
                f"after {worker.restarts} restart(s)",
                worker,
            )
    needed = min(min_replicas, 1) if condition == "at_least_one_running" else min_replicas
    running = sum(worker.running for worker in current)
    waiting = []
    if running < needed:
        waiting.append(f"{needed} running worker(s) of version {version} ({running} running)")
    if condition == "fully_finished":
        stale = sorted(
            w.worker_id
            for w in workers
            if w.version != version and w.phase in ("pending", *_CRASHED)
        )
        if stale:
            waiting.append(
                f"pending or crash-looping workers of older versions to go ({', '.join(stale)})"
            )
    return ReadinessVerdict(not waiting, "; ".join(waiting))


def wait_until_ready(
    poll: Callable[[], Snapshot | None],
    condition: str,
    *,
    app_id: str,
    version: str,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    readiness_wait_time: float = DEFAULT_READINESS_WAIT_TIME,
    logger_fn: Callable[[str], Any] = print_to_stderr,
    logs_fn: Callable[[str], Sequence[Any]] | None = None,
    deployed_app: Any = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Poll every `readiness_wait_time` s until `condition` holds for `version`.

    `poll` returns the app's current state, or None once the app is gone. Raises
    `AppCrashLoopException` (with `logs_fn(worker_id)`), `AppReadinessException` after
    `max_wait_time`, `AppConcurrentUpgradeException` when the app moved to another version,
    and `AppDeletedDuringDeploymentException` when the app was deleted meanwhile.
    """
    condition = check_condition(condition)
    if max_wait_time < 0 or readiness_wait_time <= 0:
        raise AppConfigError(
            f"need max_wait_time >= 0 and readiness_wait_time > 0, got {max_wait_time} "
            f"and {readiness_wait_time} (the defaults are 600 and 10 seconds)"
        )
    deadline = clock() + max_wait_time
    reported = ""
    while True:
        snapshot = poll()
        if snapshot is None:
            raise AppDeletedDuringDeploymentException(app_id, deployed_app=deployed_app)
        if snapshot.version != version:
            raise AppConcurrentUpgradeException(
                app_id, version, snapshot.version, deployed_app=deployed_app
            )
        verdict = evaluate(snapshot.workers, version, snapshot.min_replicas, condition)
        if verdict.crashed is not None:
            worker_id = verdict.crashed.worker_id
            logs = logs_fn(worker_id) if logs_fn is not None else []
            raise AppCrashLoopException(
                app_id,
                worker_id,
                logs,
                reason=verdict.crashed.reason,
                deployed_app=deployed_app,
            )
        if verdict.ready:
            logger_fn(f"app {app_id!r} version {version} is ready ({condition})")
            return snapshot
        if verdict.waiting_for != reported:
            reported = verdict.waiting_for
            logger_fn(f"app {app_id!r}: waiting for {reported}")
        remaining = deadline - clock()
        if remaining <= 0:
            raise AppReadinessException(
                app_id,
                f"{condition} not met within max_wait_time={max_wait_time}s; "
                f"still waiting for {verdict.waiting_for}",
                deployed_app=deployed_app,
            )
        sleep(min(readiness_wait_time, remaining))
