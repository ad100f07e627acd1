"""Pod status → worker: what the readiness conditions and crash-loop checks count.

Input is a pod as the API returns it: `kubectl get pods -o json` items (camelCase), a client
`V1Pod`, or its `to_dict()` (snake_case). A worker that will not come up without a change
(image cannot be pulled, missing Secret, code package fetch failed) is `failed` with a reason
that says what to fix; one that keeps exiting is `crashloop`; one waiting for a node or still
starting is `pending`. Log text as the API returns it (with timestamps) becomes `LogLine`s.
"""

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from deployer.orchestration.readiness import Phase, WorkerStatus
from deployer.runtimes.base import LogLine, Worker
from deployer.runtimes.kubernetes.labels import APP_CONTAINER, FETCH_CONTAINER, VERSION_LABEL

_TIMESTAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\S+) (.*)")
IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
START_ERRORS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class LogRequest:
    """Arguments for `CoreV1Api.read_namespaced_pod_log`: the container whose logs explain."""

    name: str
    namespace: str
    container: str
    previous: bool

    def kwargs(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "name": self.name,
            "namespace": self.namespace,
            "previous": self.previous,
            "timestamps": True,
        }


def workers(pods: Mapping[str, Any] | Iterable[Any]) -> list[Worker]:
    """Every pod of a PodList (or any iterable of pods), oldest first as `Runtime` reports."""
    items = pods.get("items", []) if isinstance(pods, Mapping) else pods
    views = [_Pod(pod) for pod in items]
    views.sort(key=lambda pod: (str(pod.meta("creationTimestamp") or ""), pod.name))
    return [_worker(pod) for pod in views]


def _worker(pod: "_Pod") -> Worker:
    """Its status, and the pod's own address for other apps while it runs."""
    status = _status(pod)
    ip, port = pod.status("podIP"), pod.app_port()
    url = None
    if status.phase == "running" and ip and port:
        host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
        url = f"http://{host}:{port}"
    return Worker(status=status, internal_url=url)


def worker_status(pod: Any) -> WorkerStatus:
    return _status(_Pod(pod))


def _status(pod: "_Pod") -> WorkerStatus:
    phase, reason = _phase(pod)
    return WorkerStatus(
        worker_id=pod.name,
        version=(pod.meta("labels") or {}).get(VERSION_LABEL),
        phase=phase,
        ready=phase == "running" and pod.condition("Ready", "status") == "True",
        restarts=sum(
            _get(status, "restartCount") or 0
            for status in pod.statuses("initContainerStatuses") + pod.statuses("containerStatuses")
        ),
        reason=reason,
    )


def logs_request(pod: Any, *, previous: bool) -> LogRequest:
    """Logs of the code fetcher while it is what fails, else of the app."""
    view = _Pod(pod)
    fetch_failing = any(
        _get(status, "name") == FETCH_CONTAINER and _failure(status, app=False) is not None
        for status in view.statuses("initContainerStatuses")
    )
    return LogRequest(
        name=view.name,
        namespace=view.meta("namespace") or "default",
        container=FETCH_CONTAINER if fetch_failing else APP_CONTAINER,
        previous=previous,
    )


def log_lines(text: str) -> list[LogLine]:
    """`timestamps=True` log text → lines that keep the kubelet's timestamp."""
    lines = []
    for line in text.splitlines():
        match = _TIMESTAMPED.fullmatch(line)
        lines.append(LogLine(match[2], match[1]) if match else LogLine(line))
    return lines


def _phase(pod: "_Pod") -> tuple[Phase, str | None]:
    if pod.meta("deletionTimestamp"):
        return "terminated", "being deleted"
    phase = pod.status("phase")
    if phase == "Succeeded":
        return "terminated", "all containers exited"
    if phase == "Failed":
        what = pod.status("reason") or "Failed"
        return "failed", f"{what}: {(pod.status('message') or 'the pod failed').strip()}"
    for status in pod.statuses("initContainerStatuses"):
        failure = _failure(status, app=False)
        if failure is not None:
            return "failed", f"code package fetch failed: {failure[1]}"
        if not _state(status, "terminated"):
            return "pending", "fetching the code package"
    for status in pod.statuses("containerStatuses"):
        failure = _failure(status, app=True)
        if failure is not None:
            return failure[0], _with_memory_hint(failure[1], pod.memory_limit(_get(status, "name")))
    if phase == "Running" and pod.statuses("containerStatuses"):
        return "running", _restart_note(pod)
    unschedulable = pod.condition("PodScheduled", "reason") == "Unschedulable"
    if unschedulable:
        return "pending", f"unschedulable: {pod.condition('PodScheduled', 'message')}"
    if phase == "Unknown":
        return "pending", "the node stopped reporting this pod"
    return "pending", _waiting_reason(pod)


def _failure(status: Mapping[str, Any], *, app: bool) -> tuple[Phase, str] | None:
    """(phase, why) when a container cannot run as it is, None while it is fine or starting.

    An init container that exits 0 is done; an app container that exits at all has crashed.
    """
    waiting = _state(status, "waiting")
    reason = _get(waiting, "reason") if waiting else None
    if waiting is not None and reason in IMAGE_ERRORS:
        image = _get(status, "image")
        return "failed", f"image {image} cannot be pulled ({reason}): {_get(waiting, 'message')}"
    if waiting is not None and reason in START_ERRORS:
        return "failed", f"container cannot start ({reason}): {_get(waiting, 'message')}"
    last = _get(_get(status, "lastState") or {}, "terminated")
    if reason == "CrashLoopBackOff":
        return "crashloop", _exit(last) if last else "the container keeps exiting"
    terminated = _state(status, "terminated")
    if terminated and (app or _get(terminated, "exitCode") != 0):
        return "crashloop", _exit(terminated)  # an app container is restarted whatever its code
    return None


def _exit(terminated: Mapping[str, Any]) -> str:
    """How a container ended, with the tail of its log the kubelet kept (FallbackToLogsOnError)."""
    code = _get(terminated, "exitCode")
    reason = _get(terminated, "reason") or "Error"
    what = "killed: out of memory (OOMKilled)" if reason == "OOMKilled" else reason
    message = (_get(terminated, "message") or "").strip()
    return f"exited with code {code}, {what}" + (f": {message}" if message else "")


def _with_memory_hint(reason: str, limit: str | None) -> str:
    if "OOMKilled" in reason and limit:
        return f"{reason}; raise resources.memory above its limit of {limit}"
    return reason


def _restart_note(pod: "_Pod") -> str | None:
    for status in pod.statuses("containerStatuses"):
        last = _get(_get(status, "lastState") or {}, "terminated")
        if last:
            return f"restarted after it {_exit(last)}"
    return None


def _waiting_reason(pod: "_Pod") -> str | None:
    for status in pod.statuses("containerStatuses"):
        waiting = _state(status, "waiting")
        if waiting:
            return _get(waiting, "reason")
    return None


def _state(status: Mapping[str, Any], which: str) -> Mapping[str, Any] | None:
    return _get(_get(status, "state") or {}, which)


class _Pod:
    """Read a pod whatever its key style."""

    def __init__(self, pod: Any) -> None:
        if not isinstance(pod, Mapping):
            pod = ApiClient().sanitize_for_serialization(pod)
        self._metadata = _get(pod, "metadata") or {}
        self._spec = _get(pod, "spec") or {}
        self._status = _get(pod, "status") or {}

    @property
    def name(self) -> str:
        return self.meta("name")

    def meta(self, key: str) -> Any:
        return _get(self._metadata, key)

    def status(self, key: str) -> Any:
        return _get(self._status, key)

    def statuses(self, key: str) -> list[Mapping[str, Any]]:
        return list(self.status(key) or [])

    def memory_limit(self, container: str) -> str | None:
        spec = self._container(container)
        return ((_get(spec, "resources") or {}).get("limits") or {}).get("memory")

    def app_port(self) -> int | None:
        ports = _get(self._container(APP_CONTAINER), "ports") or []
        return next((_get(port, "containerPort") for port in ports), None)

    def _container(self, name: str) -> Mapping[str, Any]:
        containers = _get(self._spec, "containers") or []
        return next((spec for spec in containers if _get(spec, "name") == name), {})

    def condition(self, kind: str, field: str) -> Any:
        for condition in self.status("conditions") or []:
            if _get(condition, "type") == kind:
                return _get(condition, field)
        return None


def _get(mapping: Mapping[str, Any], camel_key: str) -> Any:
    """`mapping[camel_key]`, or its snake_case spelling as in the client's `to_dict()`."""
    if camel_key in mapping:
        return mapping[camel_key]
    return mapping.get(re.sub(r"(?<=[a-z0-9])([A-Z]+)", r"_\1", camel_key).lower())
