"""What the process runtime remembers about each worker, so a new Python process finds it.

Per app, `<data dir>/deployer/process/workers/<app>/` holds for each worker `<id>.json` (the
record below), `<id>.log` (stdout and stderr of its current execution), `<id>.log.previous`
(of the execution before) and `<id>.exit` (the command's exit code, once it ended), all
owner-only (`deployer.host.statedirs`): logs hold whatever the app prints. Changes happen under an
exclusive `flock` per app, so concurrent starts and stops do not interleave.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pydantic import BaseModel

from deployer.host.statedirs import private_dir, private_file, state_dir
from stagekit.files import exclusive, write_atomic


class WorkerRecord(BaseModel):
    """One replica as launched: enough to observe it, stop it and name it."""

    worker_id: str
    app: str
    version: str
    index: int
    pid: int
    pgid: int
    start_ticks: int | None
    """The pid's start time at launch; a pid that started at another time is not this worker."""
    port: int
    started_at: float
    stopped: bool = False
    """Stopped by the runtime (terminated), as opposed to ended by itself (crashed)."""


class WorkerStore:
    """The worker records and files of every app of the process runtime on this machine."""

    def __init__(self) -> None:
        self.root = state_dir("process", "workers")

    def _dir(self, app: str) -> Path:
        return self.root / app

    def all(self, app: str) -> list[WorkerRecord]:
        """Every worker of `app`, oldest first."""
        paths = sorted(self._dir(app).glob("*.json")) if self._dir(app).is_dir() else []
        records = [WorkerRecord.model_validate_json(path.read_bytes()) for path in paths]
        return sorted(records, key=lambda record: (record.started_at, record.index))

    def put(self, record: WorkerRecord) -> None:
        path = self._path(record.app, record.worker_id, ".json")
        write_atomic(path, record.model_dump_json().encode())

    def forget(self, record: WorkerRecord) -> None:
        """Delete the worker's record, logs and exit code."""
        for suffix in (".json", ".log", ".log.previous", ".exit"):
            self._path(record.app, record.worker_id, suffix).unlink(missing_ok=True)
        with suppress(OSError):  # the app's last worker: its directory goes too
            self._dir(record.app).rmdir()

    def log(self, app: str, worker_id: str, previous: bool = False) -> Path:
        return self._path(app, worker_id, ".log.previous" if previous else ".log")

    def new_execution(self, app: str, worker_id: str) -> tuple[Path, Path]:
        """The log and exit-code files for launching the worker (again): the last
        execution's log becomes the previous one, its exit code is dropped. Both files exist
        (empty, owner-only) when this returns, so the worker's shell only appends to them."""
        private_dir(self._dir(app))
        log = self.log(app, worker_id)
        if log.exists():
            log.replace(self.log(app, worker_id, previous=True))
        exit_file = self._path(app, worker_id, ".exit")
        exit_file.unlink(missing_ok=True)
        return private_file(log), private_file(exit_file)

    def exit_code(self, record: WorkerRecord) -> int | None:
        """The code the worker's command exited with; None while it runs or if it was killed."""
        try:
            return int(self._path(record.app, record.worker_id, ".exit").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _path(self, app: str, worker_id: str, suffix: str) -> Path:
        return self._dir(app) / f"{worker_id}{suffix}"

    @contextmanager
    def locked(self, app: str) -> Iterator[None]:
        """Exclusive across processes for `app`'s workers."""
        with exclusive(self.root / f"{app}.lock"):
            yield
