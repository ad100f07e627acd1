"""What the deployer remembers about each app, so apps outlive the process that deployed them.

One JSON file per app under `<data dir>/deployer/<runtime>/` (owner-only: records hold API
tokens, `deployer.host.statedirs`), written atomically, and edited only under an exclusive
`flock` on a sibling lock file: two processes deploying the same name serialize their
read-modify-write, which is what the upgrade lock (`upgrades`) needs.
The runtime (containers, processes) is the record of what runs; this is the record of what
was asked for: config, serving version, public port, API token, who is upgrading.
"""

import getpass
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, JsonValue

from deployer.host.statedirs import private_dir, state_dir
from stagekit.files import exclusive, write_atomic


def whoami() -> str:
    """Who is acting, as the upgrade lock and `info()` report it: user@host pid N."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


class Upgrade(BaseModel):
    """A deployment in progress; its holder checks it is still theirs before finishing."""

    id: str
    version: str
    by: str
    host: str
    pid: int
    started_at: float
    expires_at: float


class AppRecord(BaseModel):
    """One app. `version` is the version serving traffic (None until one became ready)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    runtime: str
    spec: dict[str, JsonValue]
    tags: dict[str, str] = {}
    project: str | None = None
    branch: str | None = None
    auth_type: str = "Browser"
    version: str | None = None
    attempted_version: str | None = None
    upgrade: Upgrade | None = None
    public_port: int | None = None
    api_token: str | None = None
    scaled_to_zero: bool = False
    created_at: float
    updated_at: float
    deployed_by: str

    @classmethod
    def new(cls, name: str, runtime: str) -> "AppRecord":
        now = time.time()
        return cls(
            id=f"app-{uuid.uuid4().hex[:12]}",
            name=name,
            runtime=runtime,
            spec={},
            created_at=now,
            updated_at=now,
            deployed_by=whoami(),
        )


class RecordStore:
    """The apps of one runtime on this machine."""

    def __init__(self, runtime: str, root: Path | None = None) -> None:
        self.runtime = runtime
        self.root = private_dir(root) if root else state_dir(runtime)

    def _path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def get(self, name: str) -> AppRecord | None:
        try:
            return AppRecord.model_validate_json(self._path(name).read_bytes())
        except FileNotFoundError:
            return None

    def all(self) -> list[AppRecord]:
        """Every app's record, by name."""
        if not self.root.is_dir():
            return []
        records = (self.get(path.stem) for path in sorted(self.root.glob("*.json")))
        return [record for record in records if record is not None]

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Exclusive across processes for `name`; reads and writes inside see no interleaving."""
        with exclusive(self.root / f"{name}.lock"):
            yield

    def put(self, record: AppRecord) -> None:
        """Write `record` atomically (call inside `locked`); mode 0600, it may hold a token."""
        record.updated_at = time.time()
        write_atomic(self._path(record.name), record.model_dump_json(indent=1).encode())

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
