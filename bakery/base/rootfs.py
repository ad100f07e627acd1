"""A root filesystem tarball -> one deterministic, gzipped OCI layer in the BlobCache.

The source tar (mmdebstrap's) already has reproducible content; this rewrites its framing
so the layer's bytes depend on nothing else: entries sorted by path, headers from
`reprotar` (mtime 0, no owner names, PAX), one gzip member. Kept as they are: file modes
including setuid/setgid/sticky bits, numeric uid/gid (Debian's fixed system ids, e.g.
`unix_chkpwd` is setgid shadow — forcing 0 would make it setgid root), symlinks, and hard
links (as tar hard links, so /usr/bin/perl's 4 MB are stored once). Dropped: everything
under dev/ and any device node or fifo — container runtimes mount their own /dev — but the
empty dev/ directory stays as the mount point.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from posixpath import normpath

from bakery.errors import ImageBakingException
from bakery.oci.cache import BlobCache
from bakery.oci.model import OCI_LAYER_GZIP, Layer
from reprotar import (
    END_OF_ARCHIVE,
    directory_header,
    file_header,
    gzip_members,
    hardlink_header,
    padding,
    symlink_header,
)
from stagekit.progress import ProgressCallback

_CHUNK = 1 << 20
_STAGE = "normalise rootfs"


@dataclass(frozen=True)
class RootfsLayer:
    """The cached layer and the in-image paths it holds (relative, no leading '/')."""

    layer: Layer
    paths: tuple[str, ...]


def normalise_rootfs(
    source: Path, cache: BlobCache, progress: ProgressCallback | None = None
) -> RootfsLayer:
    """Rewrite the rootfs tarball `source` as a deterministic layer stored in `cache`."""
    out = cache.temp_path()
    try:
        entries, diff_id = _write_layer(source, out, progress)
        digest = cache.put_file(out)
    finally:
        out.unlink(missing_ok=True)  # moved into the cache, or a partial layer on any failure
    return RootfsLayer(cache.layer(digest, OCI_LAYER_GZIP, diff_id), tuple(entries))


def _write_layer(
    source: Path, out: Path, progress: ProgressCallback | None
) -> tuple[dict[str, tarfile.TarInfo], str]:
    """Write the gzipped layer to `out`; return the entries it holds and its diff_id."""
    try:
        with tarfile.open(source) as tar:
            entries = _entries(tar)
            tar_hash = hashlib.sha256()
            with out.open("wb") as handle:
                chunks = _tar_chunks(tar, entries, progress)
                for piece in gzip_members(_hashed(chunks, tar_hash.update)):
                    handle.write(piece)
    except (tarfile.TarError, OSError) as exc:
        raise ImageBakingException(
            f"cannot read the rootfs tarball {source}: {exc}; the bootstrap output is "
            "incomplete (was the disk full?), build the base again"
        ) from exc
    return entries, "sha256:" + tar_hash.hexdigest()


def _entries(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Members to keep, by normalised path, in output order."""
    kept: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        path = _normalise(member.name)
        if not path or path.startswith("dev/"):
            continue
        if member.ischr() or member.isblk() or member.isfifo():
            continue
        if not (member.isdir() or member.isfile() or member.issym() or member.islnk()):
            raise ImageBakingException(
                f"the rootfs tarball has {member.name!r} of an unexpected tar type "
                f"{member.type!r}; only files, directories and links can go into a layer"
            )
        kept[path] = member
    return dict(sorted(kept.items()))


def _tar_chunks(
    tar: tarfile.TarFile,
    entries: dict[str, tarfile.TarInfo],
    progress: ProgressCallback | None,
) -> Iterator[bytes]:
    """The layer's tar stream; each hard-link group's data goes with its first path."""
    first_of_group: dict[str, str] = {}  # data-carrying source path -> first path written
    sources = {path: _link_source(member, entries) for path, member in entries.items()}
    total = len(entries)
    for done, (path, member) in enumerate(entries.items(), 1):
        owner = {"uid": member.uid, "gid": member.gid}
        mode = member.mode & 0o7777
        if member.isdir():
            yield directory_header(path, mode, **owner)
        elif member.issym():
            yield symlink_header(path, member.linkname, **owner)
        elif sources[path] in first_of_group:
            yield hardlink_header(path, first_of_group[sources[path]], mode, **owner)
        else:
            first_of_group[sources[path]] = path
            data = entries[sources[path]]
            yield file_header(path, data.size, mode, **owner)
            yield from _file_data(tar, data)
            yield padding(data.size)
        if progress and (done % 1000 == 0 or done == total):
            progress(_STAGE, done, total)
    yield END_OF_ARCHIVE


def _link_source(member: tarfile.TarInfo, entries: dict[str, tarfile.TarInfo]) -> str:
    """The path of the regular-file entry holding this file's data (itself if not a link)."""
    if not member.islnk():
        return _normalise(member.name)
    source = _normalise(member.linkname)
    if source not in entries or not entries[source].isfile():
        raise ImageBakingException(
            f"the rootfs tarball's hard link {member.name!r} points at {member.linkname!r}, "
            "which is not a regular file in the tarball; the bootstrap output is broken"
        )
    return source


def _file_data(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    handle = tar.extractfile(member)
    if handle is None:
        raise ImageBakingException(f"the rootfs tarball has no data for {member.name!r}")
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _hashed(chunks: Iterator[bytes], see: Callable[[bytes], object]) -> Iterator[bytes]:
    for chunk in chunks:
        see(chunk)
        yield chunk


def _normalise(name: str) -> str:
    """`./usr/bin/` -> `usr/bin`; the root itself -> ''."""
    path = normpath(name.lstrip("/"))
    return "" if path == "." else path
