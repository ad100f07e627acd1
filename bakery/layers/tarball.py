"""A set of files at in-image paths -> one deterministic gzipped tar layer.

Bytes depend only on the files: entries are sorted, every parent directory gets its own
entry (0755), and header fields (mtime, uid, gid, owner names) are fixed by `reprotar`. The
layer is one gzip member (streamed through `reprotar.gzip_members`): a package's layer is
cached and reused whole, so a member per entry would cost ratio without enabling any reuse.
"""

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from posixpath import dirname
from typing import BinaryIO

from bakery.errors import ImageBakingException
from reprotar import (
    END_OF_ARCHIVE,
    directory_header,
    file_header,
    gzip_members,
    padding,
    symlink_header,
)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerFile:
    """One regular file to put in a layer: its mode, size and a seekable stream of its bytes."""

    mode: int
    size: int
    content: BinaryIO


@dataclass(frozen=True)
class LayerSymlink:
    """A symbolic link to put in a layer (e.g. the environment's bin/python)."""

    target: str


@dataclass(frozen=True)
class TarDigests:
    """sha256 hex and size of the compressed blob and of the tar inside it."""

    sha256: str
    size: int
    diff_sha256: str
    uncompressed_size: int


class _Counted:
    """Hashes and counts the bytes that pass through it."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def see(self, data: bytes) -> bytes:
        self.hash.update(data)
        self.size += len(data)
        return data


LayerEntry = LayerFile | LayerSymlink


def write_layer(files: Mapping[str, LayerEntry], out: BinaryIO) -> TarDigests:
    """Write `files` (keys: '/'-separated paths relative to `/`) as a tar.gz layer to `out`."""
    tar = _Counted()
    blob = _Counted()
    for piece in gzip_members(tar.see(chunk) for chunk in _tar_chunks(files)):
        out.write(blob.see(piece))
    return TarDigests(
        sha256=blob.hash.hexdigest(),
        size=blob.size,
        diff_sha256=tar.hash.hexdigest(),
        uncompressed_size=tar.size,
    )


def _tar_chunks(files: Mapping[str, LayerEntry]) -> Iterator[bytes]:
    directories = {parent for path in files for parent in _parents(path)}
    if clash := sorted(directories & files.keys()):
        raise ImageBakingException(f"{clash[0]} would be both a file and a directory in a layer.")
    for path in sorted(directories | files.keys()):
        if path in directories:
            yield directory_header(path)
            continue
        file = files[path]
        if isinstance(file, LayerSymlink):
            yield symlink_header(path, file.target)
            continue
        yield file_header(path, file.size, file.mode)
        file.content.seek(0)
        while chunk := file.content.read(_CHUNK):
            yield chunk
        yield padding(file.size)
    yield END_OF_ARCHIVE


def _parents(path: str) -> Iterator[str]:
    parent = dirname(path)
    while parent:
        yield parent
        parent = dirname(parent)
