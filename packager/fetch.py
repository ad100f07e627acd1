"""fetch_code: the runtime side. Download, verify the key, extract safely.

A package is extracted into a staging directory beside `dest` and renamed into place only
after every file's digest has been recomputed and the package key matches, so a tampered or
truncated object leaves nothing behind. Only regular files with relative, `..`-free paths are
accepted: a package made by `package_code` never holds anything else.
"""

import os
import shutil
import tarfile
import uuid
from pathlib import Path, PurePosixPath

import blake3

from packager.errors import CodePackagingException
from packager.hashing import package_key
from packager.stores import store_holding


def _safe_relative(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or name.startswith("/"):
        raise CodePackagingException(f"package entry {name!r} would land outside the destination")
    return path.as_posix()


def _extract(tarball: Path, staging: Path) -> list[tuple[str, bool, str]]:
    """Extract regular files into `staging`, returning their (path, executable, digest)."""
    entries: dict[str, tuple[str, bool, str]] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if not member.isreg():
                raise CodePackagingException(
                    f"package entry {member.name!r} is not a regular file "
                    "(links, directories and devices are refused)"
                )
            relative = _safe_relative(member.name)
            if relative in entries:
                raise CodePackagingException(f"package holds {relative!r} twice")
            executable = bool(member.mode & 0o111)
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # regular files always have data
            hasher = blake3.blake3()
            with open(target, "xb") as out:
                while chunk := source.read(1024 * 1024):
                    hasher.update(chunk)
                    out.write(chunk)
            os.chmod(target, 0o755 if executable else 0o644)
            entries[relative] = (relative, executable, hasher.hexdigest())
    return list(entries.values())


def fetch_code(url: str, key: str, dest: str | os.PathLike) -> Path:
    """Download the package at `url`, check it hashes to `key`, extract it to `dest`.

    `dest` must not exist or be an empty directory. Returns `dest` as a Path.
    """
    destination = Path(dest).absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise CodePackagingException(f"{destination} exists and is not an empty directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    store = store_holding(url)
    staging = destination.parent / f".{destination.name}.fetch-{uuid.uuid4().hex}"
    download = staging.with_suffix(".tar.gz")
    try:
        staging.mkdir()
        store.download(url, download)
        try:
            entries = _extract(download, staging)
        except (tarfile.TarError, EOFError, OSError, ValueError) as error:
            raise CodePackagingException(
                f"code package at {url} is corrupt or truncated ({error}); package it again"
            ) from None
        actual = package_key(entries)
        if actual != key:
            raise CodePackagingException(
                f"code package at {url} does not match its key: expected {key}, got {actual}; "
                "the object was modified or is not the package you asked for"
            )
        if destination.exists():
            destination.rmdir()
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        download.unlink(missing_ok=True)
    return destination
