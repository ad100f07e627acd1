"""Extract a package tarball safely and within bounds: the work behind `fetch_code`.

Only regular files with relative, `..`-free paths are written: a package made by
`package_code` never holds anything else. What could make a small download expensive is
refused before it costs anything: the decompressed tar stream may not pass `limit` bytes (an
entry whose declared size would cross it is refused before any of its data is read), sparse
entries (a 95-byte entry can expand to GiBs) and global headers are refused, and an extended
header (PAX, GNU long name) may hold at most `MAX_EXTENDED_HEADER` bytes, checked before
tarfile reads it into memory. Directories are created and removed without recursion, since
a package may nest a thousand directories deep.
"""

import contextlib
import gzip
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import blake3

from packager.errors import local_failure
from packager.members import Identity
from stagekit.cancel import CancelToken

MAX_EXTENDED_HEADER = 64 * 1024
"""Bytes an extended header may hold; package_code writes one only for a long or non-ASCII
path, whose length the filesystem already limits to a few KiB."""

_CHUNK = 1024 * 1024
_REFUSED_HEADERS = {
    tarfile.GNUTYPE_SPARSE: "GNU sparse file",
    tarfile.XGLTYPE: "global extended header",
    tarfile.SOLARIS_XHDTYPE: "Solaris extended header",
}
_EXTENDED_HEADERS = (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


class BadPackage(Exception):
    """The package is not what package_code writes; the message completes "code package at
    URL ..."."""


@contextlib.contextmanager
def _decompressing() -> Iterator[None]:
    try:
        yield
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise BadPackage(f"is corrupt or truncated ({error}); package it again") from error


class _Stream:
    """The decompressed tar stream for tarfile, never read past `limit` bytes nor, while an
    extended header is processed, past the one plain header it describes."""

    def __init__(self, compressed: BinaryIO, limit: int):
        self._gzip = gzip.GzipFile(fileobj=compressed, mode="rb")
        self.limit = limit
        self.window: int | None = None

    def tell(self) -> int:
        return self._gzip.tell()

    def read(self, size: int) -> bytes:
        end = self.tell() + size
        if self.window is not None and end > self.window:
            raise BadPackage(
                "has an extended header describing an entry with more than one header block "
                "(a sparse map), which package_code never writes"
            )
        self._within_limit(end)
        with _decompressing():
            return self._gzip.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """tarfile skips padding by seeking; skipped bytes count like read ones."""
        self._within_limit(offset if whence == os.SEEK_SET else self.tell() + offset)
        with _decompressing():
            return self._gzip.seek(offset, whence)

    def drain(self) -> None:
        """Read what follows the end of the archive, so the limit counts the whole stream."""
        while True:
            room = self.limit - self.tell()
            with _decompressing():
                data = self._gzip.read(min(_CHUNK, room + 1))
            if not data:
                return
            self._within_limit(self.tell())

    def _within_limit(self, end: int) -> None:
        if end > self.limit:
            raise BadPackage(_too_large(self.limit))

    def close(self) -> None:
        self._gzip.close()


def _too_large(limit: int) -> str:
    return (
        f"is larger than {limit} bytes uncompressed (BAKERY_CODE_MAX_BYTES); raise the limit "
        "only if you trust the package"
    )


class _GuardedInfo(tarfile.TarInfo):
    """A tar header that refuses what would cost more than it declares before tarfile reads
    its payload: `_proc_member` is tarfile's documented hook for subclasses."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _REFUSED_HEADERS:
            raise BadPackage(
                f"holds a {_REFUSED_HEADERS[self.type]} ({self.name!r}), which package_code "
                "never writes"
            )
        if self.type not in _EXTENDED_HEADERS:
            return super()._proc_member(archive)  # type: ignore[misc]  # private hook
        stream: _Stream = archive.fileobj  # type: ignore[assignment]
        if stream.window is not None:
            raise BadPackage(
                f"has an extended header ({self.name!r}) right after another one, which "
                "package_code never writes"
            )
        if self.size > MAX_EXTENDED_HEADER:
            raise BadPackage(
                f"has a {self.size}-byte extended header, over the {MAX_EXTENDED_HEADER}-byte "
                "limit; package_code never writes one that large"
            )
        payload = -(-self.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        stream.window = stream.tell() + payload + tarfile.BLOCKSIZE
        try:
            return super()._proc_member(archive)  # type: ignore[misc]  # private hook
        finally:
            stream.window = None


def _safe_relative(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BadPackage(f"has an entry {name!r} that would land outside the destination")
    return path.as_posix()


class _Tree:
    """The files written below `root` and the directories made for them, one level at a time."""

    def __init__(self, root: Path):
        self.root = root
        self.directories = {""}
        self.files: dict[str, Identity] = {}

    def add(self, relative: str, executable: bool, data: BinaryIO) -> None:
        if relative in self.files:
            raise BadPackage(f"holds {relative!r} twice")
        if relative in self.directories:
            raise BadPackage(f"holds {relative!r} both as a file and as a directory")
        self._make_parents(relative)
        target = self.root / relative
        hasher = blake3.blake3()
        with open(target, "xb") as out:
            while chunk := data.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        os.chmod(target, 0o755 if executable else 0o644)
        self.files[relative] = (relative, executable, hasher.hexdigest())

    def _make_parents(self, relative: str) -> None:
        missing = []
        parent = relative.rpartition("/")[0]
        while parent not in self.directories:
            if parent in self.files:
                raise BadPackage(f"holds {parent!r} both as a file and as a directory")
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        for directory in reversed(missing):
            os.mkdir(self.root / directory)
            self.directories.add(directory)


def _check(member: tarfile.TarInfo, limit: int) -> str:
    """The member's safe relative path, if it is a regular file that fits in `limit`."""
    if not member.isreg():
        raise BadPackage(
            f"has an entry {member.name!r} that is not a regular file "
            "(links, directories and devices are refused)"
        )
    if member.sparse is not None:
        raise BadPackage(f"holds a sparse file ({member.name!r}), which package_code never writes")
    relative = _safe_relative(member.name)
    if member.offset_data + member.size > limit:
        raise BadPackage(_too_large(limit))
    return relative


def extract(tarball: Path, root: Path, limit: int, cancel: CancelToken) -> list[Identity]:
    """Extract the regular files of `tarball` into the new directory `root`, returning
    their (path, executable, digest). Raises `BadPackage` for anything package_code would
    not have written, `CodePackagingException` when writing here fails, `Cancelled` from
    `cancel`, checked before each member."""
    tree = _Tree(root)
    try:
        root.mkdir()
        with (
            open(tarball, "rb") as compressed,
            contextlib.closing(_Stream(compressed, limit)) as stream,
            tarfile.open(fileobj=stream, mode="r:", tarinfo=_GuardedInfo) as archive,  # type: ignore[call-overload]
        ):
            for member in archive:
                cancel.check()
                relative = _check(member, limit)
                data = archive.extractfile(member)
                assert data is not None  # regular files always have data
                tree.add(relative, bool(member.mode & 0o111), data)
            stream.drain()
    except tarfile.TarError as error:
        raise BadPackage(f"is corrupt or truncated ({error}); package it again") from error
    except OSError as error:
        raise local_failure(error, f"extract the package into {root}") from error
    return list(tree.files.values())


def remove_tree(root: Path) -> None:
    """Remove `root` and everything below it, best effort and without recursion (Python
    3.11's shutil.rmtree recurses once per level and fails on a deep package)."""
    directories = [str(root)]
    pending = [str(root)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                directories.append(entry.path)
                pending.append(entry.path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    for directory in reversed(directories):
        with contextlib.suppress(OSError):
            os.rmdir(directory)
