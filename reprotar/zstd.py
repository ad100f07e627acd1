"""Deterministic zstd streams: one frame, no content size, checksum on, fixed level.

zstd output depends only on the input, the level and the library version (single-threaded
mode), so the same layer always compresses to the same blob and digest.
"""

from collections.abc import Iterable, Iterator

import zstandard

ZSTD_LEVEL = 3


def zstd_stream(chunks: Iterable[bytes], level: int = ZSTD_LEVEL) -> Iterator[bytes]:
    """One zstd frame holding `chunks`, yielded piece by piece."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()
