"""Readiness conditions on hand-written worker snapshots, and the wait loop on scripted polls.

The wait loop takes its clock and sleep as arguments; a tiny manual clock makes the tests
take no real time while running the same code a runtime runs.
"""

from collections.abc import Iterable

import pytest

from deployer.exceptions import (
    AppConcurrentUpgradeException,
    AppConfigError,
    AppCrashLoopException,
    AppDeletedDuringDeploymentException,
    AppReadinessException,
)
from deployer.orchestration.readiness import (
    CONDITIONS,
    Snapshot,
    WorkerStatus,
    evaluate,
    wait_until_ready,
)


def worker(
    worker_id: str,
    version: str = "v2",
    phase: str = "running",
    ready: bool = True,
    restarts: int = 0,
) -> WorkerStatus:
    return WorkerStatus(worker_id, version, phase, ready, restarts)  # type: ignore[arg-type]


RUNNING = worker("w1")
RUNNING_2 = worker("w2")
STARTING = worker("w3", phase="running", ready=False)
PENDING = worker("w4", phase="pending", ready=False)
OLD_RUNNING = worker("o1", "v1")
OLD_PENDING = worker("o2", "v1", "pending", False)
OLD_CRASHLOOP = worker("o3", "v1", "crashloop", False, 5)
OLD_FAILED = worker("o4", "v1", "failed", False)
OLD_TERMINATED = worker("o5", "v1", "terminated", False)


@pytest.mark.parametrize(
    ("condition", "workers", "min_replicas", "ready"),
    [
        # at_least_one_running: min(min_replicas, 1) workers of the current version running
        ("at_least_one_running", [RUNNING], 3, True),
        ("at_least_one_running", [PENDING, STARTING], 3, False),
        ("at_least_one_running", [OLD_RUNNING], 1, False),
        ("at_least_one_running", [], 0, True),
        ("at_least_one_running", [PENDING], 0, True),
        ("at_least_one_running", [RUNNING, OLD_PENDING], 1, True),
        # all_running: min_replicas workers of the current version running
        ("all_running", [RUNNING], 2, False),
        ("all_running", [RUNNING, RUNNING_2], 2, True),
        ("all_running", [RUNNING, STARTING], 2, False),
        ("all_running", [RUNNING, OLD_RUNNING], 2, False),
        ("all_running", [], 0, True),
        ("all_running", [RUNNING, OLD_CRASHLOOP], 1, True),
        # fully_finished: all_running and no pending/crash-looping workers of older versions
        ("fully_finished", [RUNNING], 1, True),
        ("fully_finished", [RUNNING, OLD_PENDING], 1, False),
        ("fully_finished", [RUNNING, OLD_CRASHLOOP], 1, False),
        ("fully_finished", [RUNNING, OLD_FAILED], 1, False),
        ("fully_finished", [RUNNING, OLD_TERMINATED], 1, True),
        ("fully_finished", [RUNNING, OLD_RUNNING], 1, True),
        ("fully_finished", [OLD_TERMINATED], 1, False),
        ("fully_finished", [OLD_PENDING], 0, False),
        ("fully_finished", [], 0, True),
        # async: ready once registered; workers are not looked at
        ("async", [], 3, True),
        ("async", [PENDING], 3, True),
        ("async", [worker("c", phase="crashloop", ready=False)], 1, True),
    ],
)
def test_conditions(
    condition: str, workers: list[WorkerStatus], min_replicas: int, ready: bool
) -> None:
    verdict = evaluate(workers, "v2", min_replicas, condition)
    assert verdict.ready is ready
    assert verdict.crashed is None
    assert (verdict.waiting_for == "") is ready


def test_waiting_for_says_what_is_missing() -> None:
    verdict = evaluate([RUNNING, OLD_PENDING, OLD_CRASHLOOP], "v2", 2, "fully_finished")
    assert verdict.waiting_for == (
        "2 running worker(s) of version v2 (1 running); "
        "pending or crash-looping workers of older versions to go (o2, o3)"
    )


@pytest.mark.parametrize("phase", ["crashloop", "failed"])
@pytest.mark.parametrize("condition", ["at_least_one_running", "all_running", "fully_finished"])
def test_a_crashed_current_worker_is_reported_even_when_others_run(
    phase: str, condition: str
) -> None:
    crashed = worker("w9", phase=phase, ready=False, restarts=4)
    verdict = evaluate([RUNNING, RUNNING_2, crashed], "v2", 1, condition)
    assert verdict.crashed == crashed
    assert verdict.ready is False
    assert f"worker w9 of version v2 is {phase} after 4 restart(s)" == verdict.waiting_for


def test_crashed_workers_of_older_versions_are_not_this_deploys_crash() -> None:
    verdict = evaluate([RUNNING, OLD_CRASHLOOP, OLD_FAILED], "v2", 1, "at_least_one_running")
    assert verdict.crashed is None
    assert verdict.ready is True


def test_unknown_condition_lists_the_valid_ones() -> None:
    with pytest.raises(AppConfigError) as caught:
        evaluate([], "v2", 1, "ATLEAST_ONE_RUNNING")
    for condition in CONDITIONS:
        assert condition in str(caught.value)
    assert set(CONDITIONS) == {"at_least_one_running", "all_running", "fully_finished", "async"}


def test_worker_phase_is_checked() -> None:
    with pytest.raises(ValueError, match="'Running' is not one of"):
        worker("w", phase="Running")


# --- the wait loop ------------------------------------------------------------------------


class ManualClock:
    """Time that moves only when the loop sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(snapshots: Iterable[Snapshot | None]):
    """A poll that returns the given states in order, then keeps returning the last one."""
    states = list(snapshots)

    def poll() -> Snapshot | None:
        return states.pop(0) if len(states) > 1 else states[0]

    return poll


def snap(*workers: WorkerStatus, version: str = "v2", min_replicas: int = 2) -> Snapshot:
    return Snapshot(version, min_replicas, workers)


def wait(poll, condition: str = "all_running", clock: ManualClock | None = None, **kwargs):
    clock = clock or ManualClock()
    messages: list[str] = []
    options = {"max_wait_time": 600, "readiness_wait_time": 10, **kwargs}
    result = wait_until_ready(
        poll,
        condition,
        app_id="my-app",
        version="v2",
        logger_fn=messages.append,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )
    return result, messages


def test_waits_until_the_condition_holds() -> None:
    clock = ManualClock()
    final = snap(RUNNING, RUNNING_2)
    poll = scripted([snap(PENDING), snap(PENDING), snap(RUNNING, STARTING), final])
    result, messages = wait(poll, clock=clock)
    assert result == final
    assert clock.sleeps == [10, 10, 10]
    assert messages == [
        "app 'my-app': waiting for 2 running worker(s) of version v2 (0 running)",
        "app 'my-app': waiting for 2 running worker(s) of version v2 (1 running)",
        "app 'my-app' version v2 is ready (all_running)",
    ]


def test_async_returns_after_the_first_poll() -> None:
    clock = ManualClock()
    result, _ = wait(scripted([snap()]), "async", clock=clock)
    assert result == snap()
    assert clock.sleeps == []


def test_times_out_with_readiness_exception() -> None:
    clock = ManualClock()
    app = object()
    with pytest.raises(AppReadinessException) as caught:
        wait(scripted([snap(PENDING)]), clock=clock, max_wait_time=25, deployed_app=app)
    assert clock.sleeps == [10, 10, 5]
    assert clock.now == 1025
    assert caught.value.app_id == "my-app"
    assert caught.value.deployed_app is app
    assert "all_running not met within max_wait_time=25s" in str(caught.value)
    assert "still waiting for 2 running worker(s) of version v2 (0 running)" in str(caught.value)


def test_zero_max_wait_time_polls_once() -> None:
    clock = ManualClock()
    with pytest.raises(AppReadinessException):
        wait(scripted([snap(PENDING)]), clock=clock, max_wait_time=0)
    assert clock.sleeps == []


def test_crash_of_a_current_worker_raises_with_its_logs() -> None:
    crashed = worker("w2", phase="crashloop", ready=False, restarts=3)
    poll = scripted([snap(PENDING), snap(RUNNING, crashed)])
    app = object()
    requested: list[str] = []

    def logs_fn(worker_id: str) -> list[str]:
        requested.append(worker_id)
        return ["Traceback ...", "ModuleNotFoundError: No module named 'flask'"]

    with pytest.raises(AppCrashLoopException) as caught:
        wait(poll, "at_least_one_running", logs_fn=logs_fn, deployed_app=app)
    assert requested == ["w2"]
    assert caught.value.worker_id == "w2"
    assert caught.value.logs[-1] == "ModuleNotFoundError: No module named 'flask'"
    assert caught.value.deployed_app is app
    assert "No module named 'flask'" in str(caught.value)


def test_a_newer_version_invalidates_this_deploy() -> None:
    poll = scripted([snap(PENDING), snap(RUNNING, version="v3")])
    with pytest.raises(AppConcurrentUpgradeException) as caught:
        wait(poll)
    assert (caught.value.expected_version, caught.value.actual_version) == ("v2", "v3")


def test_deletion_during_the_deploy() -> None:
    with pytest.raises(AppDeletedDuringDeploymentException) as caught:
        wait(scripted([snap(PENDING), None]))
    assert caught.value.app_id == "my-app"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"readiness_wait_time": 0}, "readiness_wait_time > 0"),
        ({"max_wait_time": -1}, "max_wait_time >= 0"),
    ],
)
def test_bad_wait_parameters(kwargs: dict, fragment: str) -> None:
    with pytest.raises(AppConfigError, match=fragment):
        wait(scripted([snap()]), **kwargs)


def test_unknown_condition_fails_before_polling() -> None:
    def poll() -> Snapshot:
        raise AssertionError("must not poll")

    with pytest.raises(AppConfigError, match="use one of"):
        wait(poll, "ready")
