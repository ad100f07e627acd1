"""fetch_code: the runtime side. Download, verify the key, extract safely.

Each fetch works in its own fresh directory beside `dest` (download and staged tree), so
concurrent fetches never share a file. The tree is renamed onto `dest` only after every
file's digest has been recomputed and the package key matches, so a tampered, truncated or
oversized object leaves nothing behind; see `unpack` for what is refused.
"""

import errno
import os
import tempfile
from pathlib import Path

from packager import config
from packager.cancelling import cancel_token, reported
from packager.errors import CodePackagingException, local_failure
from packager.hashing import package_key
from packager.stores import store_holding
from packager.unpack import BadPackage, extract, remove_tree
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind


def _destination(dest: str | os.PathLike[str]) -> Path:
    """`dest` as an absolute path, checked to be new or an empty real directory."""
    destination = Path(dest).absolute()
    try:
        if destination.is_symlink():
            raise CodePackagingException(
                f"{destination} is a symbolic link (to {os.readlink(destination)}); fetch_code "
                "moves a directory into place, so give the link's target or a new path"
            )
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise CodePackagingException(f"{destination} exists and is not an empty directory")
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise local_failure(error, f"prepare {destination}") from error
    return destination


def _move_into_place(tree: Path, destination: Path) -> None:
    try:
        os.replace(tree, destination)  # onto a missing or empty directory, atomically
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise CodePackagingException(
                f"{destination} was filled while the package was being fetched (another "
                "fetch into the same directory?) and was left as it is; fetch into a new or "
                "empty directory",
                kind=ErrorKind.CONFLICT,
            ) from error
        if error.errno in (errno.EXDEV, errno.EBUSY):
            raise CodePackagingException(
                f"cannot move the package onto {destination}: it is a mount point; fetch into "
                "a directory inside it"
            ) from error
        raise local_failure(error, f"move the package into {destination}") from error


def fetch_code(
    url: str,
    key: str,
    dest: str | os.PathLike[str],
    *,
    cancel: CancelToken | None = None,
    timeout: float | None = None,
) -> Path:
    """Download the package at `url`, check it hashes to `key`, extract it to `dest`.

    `dest` must not exist or be an empty directory. Returns `dest` as a Path. A package
    larger than BAKERY_CODE_MAX_BYTES uncompressed is refused before it is written.
    `cancel` (a CancelToken) or `timeout` (seconds) stop the fetch before the download,
    between members and before the move into place; `dest` is then left as it was.
    """
    token = cancel_token(cancel, timeout)
    with reported(f"fetching {url}"):
        return _fetch(url, key, dest, token)


def _fetch(url: str, key: str, dest: str | os.PathLike[str], cancel: CancelToken) -> Path:
    cancel.check()
    destination = _destination(dest)
    store = store_holding(url)
    limit = config.max_package_bytes()
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.fetch-", dir=destination.parent))
    except OSError as error:
        raise local_failure(error, f"create a staging directory in {destination.parent}") from error
    try:
        download = work / "package.tar.gz"
        try:
            store.download(url, download)
        except OSError as error:
            raise local_failure(error, f"download {url} into {work}") from error
        tree = work / "tree"
        try:
            entries = extract(download, tree, limit, cancel)
        except BadPackage as problem:
            raise CodePackagingException(f"code package at {url} {problem}") from problem
        actual = package_key(entries)
        if actual != key:
            raise CodePackagingException(
                f"code package at {url} does not match its key: expected {key}, got {actual}; "
                "the object was modified or is not the package you asked for"
            )
        cancel.check()
        _move_into_place(tree, destination)
    finally:
        remove_tree(work)
    return destination
