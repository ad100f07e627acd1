"""Read each new file once: hash it and compress its member in the same pass.

Files the stat cache does not know must be read to be hashed; compressing them while their
bytes are in memory saves a second read when the tarball is then built. The members go to a
spool file with an index, which the tarball writer copies from like a previous archive. If
the package turns out to be stored already the spool is simply discarded.
"""

import itertools
from collections.abc import Callable
from pathlib import Path

import blake3

from packager.hashing import file_digest
from packager.members import CHUNK, Index, chunk_member, read_exact, write_index
from packager.walk import SourceFile
from packager.workers import worker_pool
from stagekit.cancel import CancelToken

_BATCH = 1024 * 1024
"""File bytes per pool task, so small files do not pay a thread hand-off apiece."""


def _hash_and_compress(batch: list[SourceFile], cancel: CancelToken) -> list[tuple[str, bytes]]:
    results = []
    for source in batch:
        cancel.check()
        data = read_exact(source.path, 0, source.size)
        member = chunk_member(source.relative, source.executable, source.size, 0, data)
        results.append((blake3.blake3(data).hexdigest(), member))
    return results


def _batches(sources: list[SourceFile]) -> list[list[SourceFile]]:
    batches: list[list[SourceFile]] = [[]]
    size = 0
    for source in sources:
        batches[-1].append(source)
        size += source.size
        if size >= _BATCH:
            batches.append([])
            size = 0
    return [batch for batch in batches if batch]


def _archive_order(source: SourceFile) -> str:
    return source.relative


class MemberSpool:
    """Members of freshly hashed files, in a scratch file at `path` plus its index."""

    def __init__(self, path: Path):
        self.path = path
        self._index: Index = {}

    def hash_files(
        self, sources: list[SourceFile], on_hashed: Callable[[int], None], cancel: CancelToken
    ) -> list[str]:
        """Digests of `sources` in order; files up to one chunk are spooled as well.

        Larger files are only hashed (blake3 over a memory map, multithreaded): their
        chunks are compressed in parallel when the tarball is written. `cancel` is checked
        before each file, in the workers and here.
        """
        digests: dict[int, str] = {}
        # In archive order, so the tarball copies the spool in a few long runs.
        small = sorted((source for source in sources if source.size <= CHUNK), key=_archive_order)
        batches = _batches(small)
        with open(self.path, "ab") as spool, worker_pool("hash") as pool:
            position = spool.tell()
            done = pool.map(_hash_and_compress, batches, itertools.repeat(cancel))
            for batch, results in zip(batches, done, strict=True):
                cancel.check()
                for source, (digest, member) in zip(batch, results, strict=True):
                    self._index[(source.relative, source.executable, digest)] = (
                        position,
                        len(member),
                    )
                    position += len(member)
                    digests[id(source)] = digest
                    on_hashed(source.size)
                spool.write(b"".join(member for _, member in results))
        for source in sources:
            if source.size > CHUNK:
                cancel.check()
                digests[id(source)] = file_digest(source.path)
                on_hashed(source.size)
        write_index(self.path, self._index)
        return [digests[id(source)] for source in sources]

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".index").unlink(missing_ok=True)
