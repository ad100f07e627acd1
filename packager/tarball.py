"""Deterministic tar.gz assembly, incremental against the previous package of the same tree.

The archive is a concatenation of gzip members (RFC 1952 allows it; gzip, tar, Python and Go
read it as one stream). Each file's tar entry (header + data + padding) is cut into members
of at most `CHUNK` bytes of file data, compressed in parallel, so the bytes of an entry depend
only on (path, mode, content). Entries the previous tarball already holds are copied byte for
byte; only new or changed files are compressed. Equal keys therefore give identical bytes
whether a tarball was built cold or incrementally.
"""

import marshal
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3

from packager.errors import CodePackagingException
from packager.hashing import file_digest
from reprotar import END_OF_ARCHIVE, file_header, gzip_member, padding

CHUNK = 4 * 1024 * 1024
"""File data per gzip member: bounds memory and lets one large file use every core."""

_INDEX_FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One file of the package: where it goes, its mode bit, content, where to read it."""

    relative: str
    executable: bool
    digest: str
    size: int
    path: str

    @property
    def identity(self) -> tuple[str, bool, str]:
        return (self.relative, self.executable, self.digest)


Index = dict[tuple[str, bool, str], tuple[int, int]]
"""Entry identity -> (offset, length) of its gzip members in a tarball."""


def index_path(tarball: Path) -> Path:
    return tarball.with_suffix(".index")


def read_index(tarball: Path) -> Index:
    """The member index saved beside `tarball`, or {} when absent or unreadable."""
    try:
        version, index = marshal.loads(index_path(tarball).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return index if version == _INDEX_FORMAT else {}


def _changed(entry: Entry) -> CodePackagingException:
    return CodePackagingException(
        f"{entry.path} changed while it was being packaged; run package_code again"
    )


def _compress_chunk(entry: Entry, offset: int) -> bytes:
    """The gzip member for the file data at `offset`, with the header/padding at the ends."""
    length = min(CHUNK, entry.size - offset)
    try:
        with open(entry.path, "rb") as handle:
            data = os.pread(handle.fileno(), length, offset)
    except FileNotFoundError:
        raise _changed(entry) from None
    if len(data) != length:
        raise _changed(entry)
    if entry.size <= CHUNK and blake3.blake3(data).hexdigest() != entry.digest:
        raise _changed(entry)
    head = file_header(entry.relative, entry.size, 0o755 if entry.executable else 0o644)
    tail = padding(entry.size) if offset + length == entry.size else b""
    return gzip_member((head if offset == 0 else b"") + data + tail)


def _chunk_offsets(entry: Entry) -> range:
    return range(0, max(entry.size, 1), CHUNK)


def _in_order(pool: ThreadPoolExecutor, entries: list[Entry], window: int) -> Iterator[bytes]:
    """Every chunk member of `entries` in archive order, at most `window` chunks in flight."""
    pending: deque[Future[bytes]] = deque()
    for entry in entries:
        for offset in _chunk_offsets(entry):
            pending.append(pool.submit(_compress_chunk, entry, offset))
            if len(pending) >= window:
                yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _copy_range(source, target, offset: int, length: int) -> None:
    while length:
        copied = os.copy_file_range(source.fileno(), target.fileno(), length, offset)
        if copied == 0:
            raise CodePackagingException("previous tarball is shorter than its index says")
        offset += copied
        length -= copied


def write_tarball(
    entries: list[Entry],
    target: Path,
    previous: Path | None,
    on_bytes: Callable[[int], None] = lambda _bytes: None,
) -> tuple[int, int]:
    """Write the archive for sorted `entries` to `target`, reusing members of `previous`.

    Returns (entries reused, entries compressed) and writes an index beside `target`.
    """
    reuse = read_index(previous) if previous else {}
    fresh = [entry for entry in entries if entry.identity not in reuse]
    index: Index = {}
    workers = os.cpu_count() or 1
    with (
        open(target, "wb") as out,
        open(previous if reuse else os.devnull, "rb") as source,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        members = _in_order(pool, fresh, window=4 * workers)
        for entry in entries:
            start = out.tell()
            if entry.identity in reuse:
                offset, length = reuse[entry.identity]
                out.flush()
                _copy_range(source, out, offset, length)
                out.seek(0, os.SEEK_END)
            else:
                for _ in _chunk_offsets(entry):
                    out.write(next(members))
                if entry.size > CHUNK and file_digest(entry.path) != entry.digest:
                    raise _changed(entry)
            index[entry.identity] = (start, out.tell() - start)
            on_bytes(entry.size)
        out.write(gzip_member(END_OF_ARCHIVE))
    index_path(target).write_bytes(marshal.dumps((_INDEX_FORMAT, index)))
    return len(entries) - len(fresh), len(fresh)
