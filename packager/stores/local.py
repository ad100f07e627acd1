"""A directory on the local filesystem: the embedded default store."""

import os
import shutil
import uuid
from pathlib import Path

from packager.errors import CodePackagingException
from packager.stores.base import object_name, split_url


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
        """Link or copy into a temp file beside the target, then rename into place."""
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.parent / f".upload-{uuid.uuid4().hex}"
            try:
                os.link(tarball, temporary)
            except OSError:
                shutil.copyfile(tarball, temporary)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except OSError as error:
            raise CodePackagingException(
                f"cannot write to the code store {self.root}: {error}"
            ) from None

    def download(self, url: str, target: Path) -> None:
        _, path = split_url(url)
        try:
            shutil.copyfile(path, target)
        except FileNotFoundError:
            raise CodePackagingException(
                f"no code package at {url}: was it packaged into this store?"
            ) from None
