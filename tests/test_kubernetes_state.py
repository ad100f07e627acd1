"""Worker status from recorded pod states, hand-written in `kubectl get pod -o json` form."""

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deployer.runtimes.kubernetes import logs_request, worker_status, workers

DATA = Path(__file__).parent / "data" / "kubernetes"

# fixture: (phase, ready, restarts, version, words the reason must contain)
TABLE: dict[str, tuple[str, bool, int, str, str | None]] = {
    "running-ready": ("running", True, 0, "v2", None),
    "running-not-ready": ("running", False, 0, "v2", None),
    "running-after-oomkilled": ("running", True, 1, "v2", "OOMKilled"),
    "crashloop": ("crashloop", False, 3, "v2", "No module named 'flask'"),
    "crashloop-oomkilled": ("crashloop", False, 2, "v2", "raise resources.memory"),
    "first-exit": ("crashloop", False, 0, "v2", "exited with code 2"),
    "exited-zero": ("crashloop", False, 0, "v2", "exited with code 0, Completed"),
    "image-pull-backoff": ("failed", False, 0, "v2", "cannot be pulled (ImagePullBackOff)"),
    "err-image-pull": ("failed", False, 0, "v2", "pull access denied"),
    "secret-missing": ("failed", False, 0, "v2", 'secret "my-api-keys" not found'),
    "init-fetch-failed": ("failed", False, 3, "v2", "code package fetch failed"),
    "init-fetching": ("pending", False, 0, "v2", "fetching the code package"),
    "pending-unschedulable": ("pending", False, 0, "v2", "Insufficient nvidia.com/gpu"),
    "container-creating": ("pending", False, 0, "v2", "ContainerCreating"),
    "terminating": ("terminated", False, 0, "v1", "being deleted"),
    "succeeded": ("terminated", False, 0, "v1", "exited"),
    "evicted": ("failed", False, 0, "v1", "Evicted: The node was low on resource: memory"),
}


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"pod-{name}.json").read_text())


def test_every_fixture_is_in_the_table() -> None:
    assert {path.stem.removeprefix("pod-") for path in DATA.glob("pod-*.json")} == set(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_fixture_is_a_valid_pod(name: str) -> None:
    client.V1Pod.model_validate(load(name))  # extra="forbid": a misspelt field fails here


@pytest.mark.parametrize("name", sorted(TABLE))
def test_worker_status(name: str) -> None:
    phase, ready, restarts, version, words = TABLE[name]
    pod = load(name)
    worker = worker_status(pod)
    assert worker.worker_id == pod["metadata"]["name"]
    assert (worker.phase, worker.ready, worker.restarts, worker.version) == (
        phase,
        ready,
        restarts,
        version,
    )
    if words is None:
        assert worker.reason is None
    else:
        assert worker.reason is not None and words in worker.reason


@pytest.mark.parametrize("name", sorted(TABLE))
def test_client_objects_and_snake_case_dicts_read_the_same(name: str) -> None:
    pod = client.V1Pod.model_validate(load(name))
    expected = worker_status(load(name))
    assert worker_status(pod) == expected
    assert worker_status(pod.to_dict()) == expected


def test_pod_list_is_read_oldest_first_then_by_name() -> None:
    items = [load(name) for name in TABLE]  # all created in the same second
    items[-1]["metadata"]["creationTimestamp"] = "2025-06-02T09:00:00Z"
    found = workers({"apiVersion": "v1", "items": items, "kind": "PodList"})
    assert found[0].worker_id == items[-1]["metadata"]["name"]
    assert [w.worker_id for w in found[1:]] == sorted(w.worker_id for w in found[1:])
    running = [w for w in found if w.version == "v2" and w.status.running]
    assert len(running) == 2


def test_logs_come_from_the_fetcher_while_it_fails() -> None:
    request = logs_request(load("init-fetch-failed"), previous=True)
    assert request.kwargs() == {
        "container": "fetch-code",
        "name": "web-6c9f8d7b5-f1z6c",
        "namespace": "apps",
        "previous": True,
        "timestamps": True,
    }
    assert logs_request(load("crashloop"), previous=True).container == "app"
    assert logs_request(load("running-ready"), previous=False).previous is False
