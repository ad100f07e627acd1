"""Deterministic tar.gz assembly from members already compressed elsewhere, plus new ones.

Entries found in an earlier archive or the spool (by their index) are copied byte for byte;
the rest are compressed here, chunk by chunk in parallel. Because an entry's members depend
only on (path, mode, content), equal keys give identical bytes whichever way they were made.
"""

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, NamedTuple

import blake3

from packager.hashing import file_digest
from packager.members import (
    CHUNK,
    Identity,
    Index,
    changed,
    chunk_member,
    chunk_offsets,
    read_exact,
    read_index,
    write_index,
)
from packager.workers import WORKERS, worker_pool
from reprotar import END_OF_ARCHIVE, gzip_member
from stagekit.cancel import CancelToken

_BATCH = 1024 * 1024
"""File bytes per compression task."""


class Entry(NamedTuple):
    """One file of the package: where it goes, its mode bit, content, where to read it."""

    relative: str
    executable: bool
    digest: str
    size: int
    path: str

    @property
    def identity(self) -> Identity:
        return (self.relative, self.executable, self.digest)


def _compress_chunk(entry: Entry, offset: int) -> bytes:
    data = read_exact(entry.path, offset, min(CHUNK, entry.size - offset))
    if entry.size <= CHUNK and blake3.blake3(data).hexdigest() != entry.digest:
        raise changed(entry.path)
    return chunk_member(entry.relative, entry.executable, entry.size, offset, data)


def _batches(entries: list[Entry]) -> Iterator[list[tuple[Entry, int]]]:
    batch: list[tuple[Entry, int]] = []
    size = 0
    for entry in entries:
        for offset in chunk_offsets(entry.size):
            batch.append((entry, offset))
            size += min(CHUNK, entry.size - offset)
            if size >= _BATCH:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def _compress_batch(batch: list[tuple[Entry, int]], cancel: CancelToken) -> list[bytes]:
    members = []
    for entry, offset in batch:
        cancel.check()
        members.append(_compress_chunk(entry, offset))
    return members


def _in_order(
    pool: ThreadPoolExecutor, entries: list[Entry], window: int, cancel: CancelToken
) -> Iterator[bytes]:
    """Every chunk member of `entries` in archive order, at most `window` batches in flight."""
    pending: deque[Future[list[bytes]]] = deque()
    for batch in _batches(entries):
        pending.append(pool.submit(_compress_batch, batch, cancel))
        if len(pending) >= window:
            yield from pending.popleft().result()
    while pending:
        yield from pending.popleft().result()


class _CopyRun:
    """Copies reused members, merging adjacent ranges of one source so an unchanged stretch
    of the archive is one copy_file_range call, not one per file."""

    def __init__(self, target: BinaryIO):
        self._target = target
        self._source: BinaryIO | None = None
        self._offset = self._length = 0

    def add(self, source: BinaryIO, offset: int, length: int) -> None:
        if self._length and (source is not self._source or offset != self._offset + self._length):
            self.flush()
        if not self._length:
            self._source, self._offset = source, offset
        self._length += length

    def flush(self) -> None:
        if not self._length or self._source is None:
            return
        self._target.flush()
        offset, length = self._offset, self._length
        while length:
            copied = os.copy_file_range(
                self._source.fileno(), self._target.fileno(), length, offset
            )
            if copied == 0:
                raise OSError(f"{self._source.name} is shorter than its index says")
            offset += copied
            length -= copied
        self._length = 0


def write_tarball(
    entries: list[Entry],
    target: Path,
    reuse_from: Sequence[Path],
    on_bytes: Callable[[int], None],
    cancel: CancelToken,
) -> tuple[int, int]:
    """Write the archive of sorted `entries` to `target`, copying members found in the
    indexed files `reuse_from`. Returns (entries copied, entries compressed here).
    `cancel` is checked before each entry and, in the workers, before each chunk."""
    with ExitStack() as stack:
        found: dict[Identity, tuple[BinaryIO, int, int]] = {}
        for archive in reuse_from:
            index = read_index(archive)
            if index:
                reused: BinaryIO = stack.enter_context(open(archive, "rb"))
                found.update((identity, (reused, *where)) for identity, where in index.items())
        fresh = [entry for entry in entries if entry.identity not in found]
        out = stack.enter_context(open(target, "wb"))
        pool = stack.enter_context(worker_pool("tar"))
        members = _in_order(pool, fresh, 4 * WORKERS, cancel)
        copy = _CopyRun(out)
        written: Index = {}
        position = 0
        for entry in entries:
            cancel.check()
            if entry.identity in found:
                source, offset, length = found[entry.identity]
                copy.add(source, offset, length)
            else:
                copy.flush()
                length = sum(out.write(next(members)) for _ in chunk_offsets(entry.size))
                if entry.size > CHUNK and file_digest(entry.path) != entry.digest:
                    raise changed(entry.path)
            written[entry.identity] = (position, length)
            position += length
            on_bytes(entry.size)
        copy.flush()
        out.write(gzip_member(END_OF_ARCHIVE))
    write_index(target, written)
    return len(entries) - len(fresh), len(fresh)
