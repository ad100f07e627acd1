"""File digests with a stat cache, and the package key computed from them.

An unchanged tree is not re-read: a file whose (size, mtime_ns, ctime_ns, inode) match the
cache keeps its cached blake3. Files modified within the last two seconds are not cached,
so a write landing in the same timestamp tick as the hash cannot hide ("racy git").
"""

import marshal
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import blake3

from packager.walk import SourceFile
from stagekit.files import write_atomic

KEY_FORMAT = b"bakery-code-package/v1\n"
"""Bumped whenever the key's inputs change, so old and new keys never collide."""

_CACHE_FORMAT = 1
_RACY_WINDOW_NS = 2_000_000_000
_LARGE_FILE = 8 * 1024 * 1024

Fingerprint = tuple[int, int, int, int]


def _fingerprint(source: SourceFile) -> Fingerprint:
    return (source.size, source.mtime_ns, source.ctime_ns, source.inode)


def file_digest(path: str) -> str:
    """blake3 hex digest of one file's bytes."""
    if os.path.getsize(path) >= _LARGE_FILE:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return hasher.hexdigest()
    with open(path, "rb") as handle:
        return blake3.blake3(handle.read()).hexdigest()


class StatCache:
    """path -> (fingerprint, digest), persisted with marshal in one file per src root."""

    def __init__(self, file: Path):
        self._file = file
        self._entries: dict[str, tuple[Fingerprint, str]] = {}
        self._dirty = False
        try:
            version, entries = marshal.loads(file.read_bytes())
            if version == _CACHE_FORMAT:
                self._entries = entries
        except (OSError, EOFError, ValueError, TypeError):
            pass  # a missing or unreadable cache only costs a re-hash

    def lookup(self, source: SourceFile) -> str | None:
        cached = self._entries.get(source.path)
        return cached[1] if cached and cached[0] == _fingerprint(source) else None

    def store(self, source: SourceFile, digest: str, started_ns: int) -> None:
        if source.mtime_ns < started_ns - _RACY_WINDOW_NS:
            self._entries[source.path] = (_fingerprint(source), digest)
            self._dirty = True

    def save(self) -> None:
        """Write atomically; concurrent writers race harmlessly (last one wins)."""
        if not self._dirty:
            return
        write_atomic(self._file, marshal.dumps((_CACHE_FORMAT, self._entries)))
        self._dirty = False


def digest_files(
    sources: list[SourceFile],
    cache: StatCache,
    hash_missing: Callable[[list[SourceFile]], list[str]],
) -> list[str]:
    """Digests of `sources` in order: from the cache where valid, else from `hash_missing`."""
    started_ns = time.time_ns()
    digests: list[str | None] = [cache.lookup(source) for source in sources]
    missing = [index for index, digest in enumerate(digests) if digest is None]
    if missing:
        fresh = hash_missing([sources[index] for index in missing])
        for index, digest in zip(missing, fresh, strict=True):
            digests[index] = digest
            cache.store(sources[index], digest, started_ns)
        cache.save()
    return digests  # type: ignore[return-value]  # every None was filled above


def package_key(entries: Iterable[tuple[str, bool, str]]) -> str:
    """blake3 over sorted (relative path, executable bit, file digest) plus the format tag.

    Independent of mtimes, owners, walk order, machine and compressor by construction.
    """
    records = [
        b"%s\0%s%s"
        % (
            relative.encode("utf-8", "surrogateescape"),
            b"x" if executable else b"-",
            bytes.fromhex(digest),
        )
        for relative, executable, digest in sorted(entries)
    ]
    return blake3.blake3(KEY_FORMAT + b"".join(records)).hexdigest()
