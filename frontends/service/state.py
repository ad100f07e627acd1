"""The service's own records: which images it baked, who may call it, and how bakes went.

The publish target stays the cache (a bake finds its image by tag); this index is what the
admin calls list, prune and count, plus the tokens the auth check reads. `ServiceIndex` is
the narrow interface the RPCs use, so the shared-mode issue can add a PostgreSQL index next
to `SqliteIndex`, the embedded default (one file under the state dir).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from stagekit.errors import ErrorKind

if TYPE_CHECKING:
    from bakery.bake import BakeResult

Scope = Literal["bake", "admin"]
SCOPES: tuple[Scope, ...] = ("bake", "admin")
TOKEN_PREFIX = "bkr_"
INDEX_FILE = "index.sqlite"
"""The SQLite index's name in the server's state dir."""


class StateError(Exception):
    """The index refused a change (a token name taken, a bad scope) or cannot be opened."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.INVALID_INPUT) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CacheRow:
    """One baked image as the index knows it; times are Unix seconds."""

    spec_id: str
    image: str
    platform: str
    size: int
    created: int
    last_used: int
    hits: int


@dataclass(frozen=True)
class Token:
    """Who a presented secret belongs to (the secret itself is never stored)."""

    name: str
    scope: Scope


class ServiceIndex(Protocol):
    """What the RPCs read and write; every method is safe to call from any thread."""

    def record_bake(
        self,
        result: BakeResult,
        platform: str,
        *,
        size: int | None = None,
        fingerprint: str = "",
        seconds: float = 0.0,
    ) -> None:
        """A bake finished: its image enters (or refreshes) the index, a hit counts as a
        use, and the history gains a row."""
        ...

    def record_failure(self, fingerprint: str, seconds: float) -> None:
        """A bake failed: only the history records it."""
        ...

    def record_hit(self, spec_id: str) -> None:
        """The image of `spec_id` was served again (a join, a hit the RPC found itself)."""
        ...

    def entries(self) -> list[CacheRow]:
        """Every indexed image, newest first."""
        ...

    def stale(self, older_than: int, unused_for: int) -> list[CacheRow]:
        """Entries created more than `older_than` seconds ago and/or last used more than
        `unused_for` seconds ago (0: that bound is not applied; both 0: none)."""
        ...

    def remove(self, spec_id: str) -> None:
        """Forget one entry (after its tag is gone)."""
        ...

    def outcomes(self) -> dict[str, int]:
        """Bakes in the history by outcome (built, hit, joined, failed), and `retagged`: the
        hits among them that resolved a stale spec again to the same lock."""
        ...

    def create_token(self, name: str, scope: Scope) -> str:
        """A new token's secret: returned once, stored only as its SHA-256."""
        ...

    def token(self, secret: str) -> Token | None:
        """The token `secret` belongs to, or None."""
        ...

    def has_tokens(self) -> bool:
        """Whether any token exists (none: the server runs without auth, loopback only)."""
        ...


_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE bakes (
        spec_id TEXT PRIMARY KEY,
        image TEXT NOT NULL,
        platform TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        scope TEXT NOT NULL CHECK (scope IN ('bake', 'admin')),
        secret_sha256 TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        outcome TEXT NOT NULL,
        seconds REAL NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX history_outcome ON history (outcome);
    """,
    # 2: a stale spec resolved again (BakeResult.refreshed); a refreshed hit was re-tagged
    "ALTER TABLE history ADD COLUMN refreshed INTEGER NOT NULL DEFAULT 0",
)
"""Schema version N is the first N scripts; `PRAGMA user_version` says which one a file has.
Append a script to change the schema; never edit one that shipped."""

_COLUMNS = "spec_id, image, platform, size, created, last_used, hits"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqliteIndex:
    """The index in one SQLite file (WAL: readers never wait for the one writer); one
    connection per thread. `clock` gives Unix seconds (tests age entries with it)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._local = threading.local()
        self._pending: list[Callable[[sqlite3.Connection], object]] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._migrate()

    def _now(self) -> int:
        return int(self._clock())

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            except (OSError, sqlite3.Error) as exc:
                raise StateError(
                    f"cannot open the service index {self.path}: {exc}; check that the state "
                    "dir is writable",
                    ErrorKind.INTERNAL,
                ) from exc
            self._local.connection = connection
        return connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taking the write lock at once (no upgrade deadlocks)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _record(self, write: Callable[[sqlite3.Connection], object]) -> None:
        """Run `write` in a transaction, committed before this returns. Writers that arrive
        while another commits share the next transaction (group commit): under a burst of
        cache hits the index costs one transaction per burst, not one per hit."""
        with self._pending_lock:
            self._pending.append(write)
        with self._commit_lock:
            with self._pending_lock:
                writes, self._pending = self._pending, []
            if writes:  # else an earlier committer took this one along
                with self._write() as db:
                    for each in writes:
                        each(db)

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise StateError(
                    f"the service index {self.path} has schema version {version}, newer than "
                    f"this bakery knows ({len(_MIGRATIONS)}); upgrade bakery",
                    ErrorKind.INTERNAL,
                )
            for script in _MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")

    # -- bakes ---------------------------------------------------------------------------

    def record_bake(
        self,
        result: BakeResult,
        platform: str,
        *,
        size: int | None = None,
        fingerprint: str = "",
        seconds: float = 0.0,
    ) -> None:
        now = self._now()
        hit = 0 if result.outcome == "built" else 1

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                """
                INSERT INTO bakes (spec_id, image, platform, size, created, last_used, hits)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (spec_id) DO UPDATE SET
                    created = CASE WHEN image = excluded.image
                        THEN created ELSE excluded.created END,
                    image = excluded.image,
                    size = CASE WHEN excluded.size > 0 THEN excluded.size ELSE size END,
                    last_used = excluded.last_used,
                    hits = hits + excluded.hits
                """,
                (result.spec_id, result.image, platform, size or 0, now, now, hit),
            )
            self._history(db, fingerprint, result.outcome, seconds, now, result.refreshed)

        self._record(write)

    def record_failure(self, fingerprint: str, seconds: float) -> None:
        now = self._now()
        self._record(lambda db: self._history(db, fingerprint, "failed", seconds, now))

    def record_hit(self, spec_id: str) -> None:
        now = self._now()
        self._record(
            lambda db: db.execute(
                "UPDATE bakes SET hits = hits + 1, last_used = ? WHERE spec_id = ?",
                (now, spec_id),
            )
        )

    @staticmethod
    def _history(
        db: sqlite3.Connection,
        fingerprint: str,
        outcome: str,
        seconds: float,
        at: int,
        refreshed: bool = False,
    ) -> None:
        db.execute(
            "INSERT INTO history (fingerprint, outcome, seconds, at, refreshed) "
            "VALUES (?, ?, ?, ?, ?)",
            (fingerprint, outcome, seconds, at, int(refreshed)),
        )

    def entries(self) -> list[CacheRow]:
        return self._rows(f"SELECT {_COLUMNS} FROM bakes ORDER BY created DESC, spec_id", ())

    def stale(self, older_than: int, unused_for: int) -> list[CacheRow]:
        if older_than <= 0 and unused_for <= 0:
            return []
        now = self._now()
        bounds, values = [], []
        if older_than > 0:
            bounds.append("created < ?")
            values.append(now - older_than)
        if unused_for > 0:
            bounds.append("last_used < ?")
            values.append(now - unused_for)
        where = " AND ".join(bounds)
        return self._rows(f"SELECT {_COLUMNS} FROM bakes WHERE {where} ORDER BY created", values)

    def remove(self, spec_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM bakes WHERE spec_id = ?", (spec_id,))

    def _rows(self, query: str, values: Iterable[object]) -> list[CacheRow]:
        return [CacheRow(*row) for row in self._connection().execute(query, tuple(values))]

    def outcomes(self) -> dict[str, int]:
        query = "SELECT outcome, COUNT(*) FROM history GROUP BY outcome"
        counts = dict(self._connection().execute(query).fetchall())
        query = "SELECT COUNT(*) FROM history WHERE outcome = 'hit' AND refreshed = 1"
        retagged = self._connection().execute(query).fetchone()[0]
        return counts | ({"retagged": retagged} if retagged else {})

    # -- tokens --------------------------------------------------------------------------

    def create_token(self, name: str, scope: Scope) -> str:
        if scope not in SCOPES:
            raise StateError(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")
        if not name.strip() or not name.isprintable():
            raise StateError(f"a token needs a printable, non-empty name, not {name!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO tokens (name, scope, secret_sha256, created) VALUES (?, ?, ?, ?)",
                    (name, scope, _digest(secret), self._now()),
                )
        except sqlite3.IntegrityError:
            raise StateError(
                f"a token named {name!r} exists already; pick another name", ErrorKind.CONFLICT
            ) from None
        return secret

    def token(self, secret: str) -> Token | None:
        row = (
            self._connection()
            .execute("SELECT name, scope FROM tokens WHERE secret_sha256 = ?", (_digest(secret),))
            .fetchone()
        )
        return Token(*row) if row else None

    def has_tokens(self) -> bool:
        return self._connection().execute("SELECT 1 FROM tokens LIMIT 1").fetchone() is not None


def image_size(reference: str) -> int | None:
    """Manifest, config and layers of `reference` in bytes (layers it shares with other
    images count in each); None where it cannot be read (the Docker Engine)."""
    from bakery.errors import ImageBakingException
    from bakery.oci.read import open_image

    try:
        with open_image(reference) as image:
            manifest = image.manifest(None)
    except ImageBakingException as exc:  # registry and layout errors are OciErrors
        logging.getLogger("bakery.service").info("size of %s unknown: %s", reference, exc)
        return None
    blobs = [manifest.json.get("config", {}), *manifest.json.get("layers", [])]
    return len(manifest.data) + sum(int(blob.get("size", 0)) for blob in blobs)
