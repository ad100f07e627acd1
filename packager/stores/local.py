"""A directory on the local filesystem: the embedded default store."""

import contextlib
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

from packager.errors import CodePackagingException, local_failure
from packager.stores.base import object_name, split_url
from stagekit.errors import ErrorKind

_CHUNK = 1024 * 1024


class LocalStore:
    def __init__(self, root: Path):
        self.root = root.absolute()

    def _path(self, key: str) -> Path:
        return self.root / object_name(key)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, tarball: Path) -> None:
        """Link or copy into a temp file beside the target, then rename into place; the temp
        file is removed whatever fails, so a full disk leaves no partial upload behind."""
        target = self._path(key)
        temporary = target.parent / f".upload-{uuid.uuid4().hex}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tarball, temporary)
            except OSError:
                shutil.copyfile(tarball, temporary)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except OSError as error:
            raise local_failure(error, f"write to the code store {self.root}") from error
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)

    def download(self, url: str, target: Path) -> None:
        _, path = split_url(url)
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError) as error:
            raise CodePackagingException(
                f"no code package at {url}: was it packaged into this store?",
                kind=ErrorKind.NOT_FOUND,
            ) from error
        except OSError as error:
            raise CodePackagingException(
                f"cannot read the code package at {url}: {error.strerror}", kind=ErrorKind.INTERNAL
            ) from error
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CodePackagingException(
                f"{url} is not a code package file (it names a directory, FIFO or device); "
                "use the URL package_code returned"
            )
        with open(fd, "rb") as source, open(target, "xb") as out:
            while chunk := _read(source, url):
                out.write(chunk)


def _read(source: BinaryIO, url: str) -> bytes:
    try:
        return source.read(_CHUNK)
    except OSError as error:
        raise CodePackagingException(
            f"cannot read the code package at {url}: {error.strerror}", kind=ErrorKind.INTERNAL
        ) from error
