"""The archive's unit: one file's tar entry as gzip members, and indexes of where they sit.

A package tarball is a concatenation of gzip members (RFC 1952 allows it; gzip, tar, Python
and Go read it as one stream). A file's entry (header + data + padding) is cut into members
of at most `CHUNK` bytes of file data, so its bytes depend only on (path, mode, content) and
can be copied from any earlier archive or spool that holds them, as an index records.
"""

import marshal
import os
from pathlib import Path

from packager.errors import CodePackagingException
from reprotar import file_header, gzip_member, padding
from stagekit.errors import ErrorKind

CHUNK = 4 * 1024 * 1024
"""File data per gzip member: bounds memory and lets one large file use every core."""

_INDEX_FORMAT = 1

Identity = tuple[str, bool, str]
"""(relative path, executable bit, file digest): what a member's bytes depend on."""

Index = dict[Identity, tuple[int, int]]
"""Identity -> (offset, length) of that file's members in an archive or spool file."""


def chunk_offsets(size: int) -> range:
    """Offsets of the data chunks of a file of `size` bytes (an empty file has one)."""
    return range(0, max(size, 1), CHUNK)


def chunk_member(relative: str, executable: bool, size: int, offset: int, data: bytes) -> bytes:
    """The gzip member of one chunk of a file, with the header first and padding last."""
    head = file_header(relative, size, 0o755 if executable else 0o644) if offset == 0 else b""
    tail = padding(size) if offset + len(data) == size else b""
    return gzip_member(head + data + tail)


def read_exact(path: str, offset: int, length: int) -> bytes:
    """`length` bytes at `offset`, or a CodePackagingException if the file changed size."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as error:
        raise changed(path) from error
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise changed(path)
    return data


def changed(path: str) -> CodePackagingException:
    return CodePackagingException(
        f"{path} changed while it was being packaged; run it again", kind=ErrorKind.CONFLICT
    )


def index_path(archive: Path) -> Path:
    return archive.with_suffix(".index")


def write_index(archive: Path, index: Index) -> None:
    index_path(archive).write_bytes(marshal.dumps((_INDEX_FORMAT, index)))


def read_index(archive: Path) -> Index:
    """The member index saved beside `archive`, or {} when absent or unreadable."""
    try:
        version, index = marshal.loads(index_path(archive).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return index if version == _INDEX_FORMAT else {}
