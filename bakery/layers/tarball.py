"""A set of files at in-image paths -> one deterministic compressed tar layer.

Bytes depend only on the files: entries are sorted, every parent directory gets its own
entry (0755), and header fields (mtime, uid, gid, owner names) are fixed by `reprotar`. The
layer is one gzip member (`reprotar.gzip_members`) or one zstd frame: a package's layer is
cached and reused whole, so a member per entry would cost ratio without enabling any reuse.
"""

import hashlib
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from posixpath import dirname
from typing import BinaryIO, Literal

import zstandard

from bakery.errors import ImageBakingException
from bakery.oci.model import OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from reprotar import (
    END_OF_ARCHIVE,
    directory_header,
    file_header,
    gzip_members,
    padding,
    symlink_header,
    zstd_stream,
)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerFile:
    """One regular file to put in a layer: its mode, size and its bytes, as a seekable stream
    or as a path opened only while it is written (a layer of an unpacked tree can have more
    files than a process may keep open)."""

    mode: int
    size: int
    content: BinaryIO | Path


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

Compression = Literal["gzip", "zstd"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd")
MEDIA_TYPES: dict[Compression, str] = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}
"""gzip is the default: Docker 20.10 cannot pull zstd layers; zstd is smaller and faster."""

_COMPRESSORS: dict[Compression, Callable[[Iterable[bytes]], Iterator[bytes]]] = {
    "gzip": gzip_members,
    "zstd": zstd_stream,
}


def write_layer(
    files: Mapping[str, LayerEntry], out: BinaryIO, compression: Compression = "gzip"
) -> TarDigests:
    """Write `files` (keys: '/'-separated paths relative to `/`) as a compressed tar layer."""
    tar = _Counted()
    blob = _Counted()
    for piece in _COMPRESSORS[compression](tar.see(chunk) for chunk in _tar_chunks(files)):
        out.write(blob.see(piece))
    return TarDigests(
        sha256=blob.hash.hexdigest(),
        size=blob.size,
        diff_sha256=tar.hash.hexdigest(),
        uncompressed_size=tar.size,
    )


def read_layer(path: Path, media_type: str) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """Each entry of a layer blob (gzip or zstd) with the data of regular files."""
    with path.open("rb") as raw:
        stream = (
            zstandard.ZstdDecompressor().stream_reader(raw) if media_type == OCI_LAYER_ZSTD else raw
        )
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                data = archive.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                yield member, data


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
        yield from _content(file)
        yield padding(file.size)
    yield END_OF_ARCHIVE


def _content(file: LayerFile) -> Iterator[bytes]:
    if isinstance(file.content, Path):
        with file.content.open("rb") as stream:
            yield from _chunks(stream)
    else:
        file.content.seek(0)
        yield from _chunks(file.content)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _parents(path: str) -> Iterator[str]:
    parent = dirname(path)
    while parent:
        yield parent
        parent = dirname(parent)
