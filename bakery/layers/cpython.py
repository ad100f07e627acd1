"""A managed CPython as one layer, for when the base image's Python is not the one asked for.

uv downloads a relocatable python-build-standalone build for the *target* platform (the
source is `BAKERY_PYTHON_MIRROR`, else uv's default GitHub release host); its files become a
layer at /opt/bakery/python. Nothing from it runs on the build machine.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import blake3

from bakery.base.model import PythonInfo
from bakery.errors import ImageBakingException
from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import Compression, LayerEntry, LayerFile, LayerSymlink
from bakery.lock import ARCHITECTURES, uv_binary

PREFIX = "/opt/bakery/python"
DEFAULT_SOURCE = "https://github.com/astral-sh/python-build-standalone/releases/download"
CPYTHON_LAYER_FORMAT = 1


def python_source() -> str:
    """Where CPython builds come from: `BAKERY_PYTHON_MIRROR`, else uv's default."""
    return os.environ.get("BAKERY_PYTHON_MIRROR") or DEFAULT_SOURCE


def _uv_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("cause: ") if lines else "uv gave no reason"


def _download(version: str, platform: str, into: Path) -> Path:
    request = f"cpython-{version}-linux-{ARCHITECTURES[platform]}-gnu"
    source = python_source()
    completed = subprocess.run(
        [uv_binary(), "python", "install", "--no-bin", "--install-dir", str(into), request],
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_INSTALL_MIRROR": source},
        timeout=600,
    )
    installs = [path for path in into.iterdir() if path.is_dir() and not path.name.startswith(".")]
    if completed.returncode != 0 or len(installs) != 1:
        raise ImageBakingException(
            f"cannot download CPython {version} for {platform} from {source}: "
            f"{_uv_error(completed.stderr)}. Set BAKERY_PYTHON_MIRROR to a reachable "
            f"python-build-standalone mirror, or use a base image that has Python {version}."
        )
    return installs[0]


def _layer_files(install: Path) -> dict[str, LayerEntry]:
    files: dict[str, LayerEntry] = {}
    root = PREFIX.lstrip("/")
    for path in sorted(install.rglob("*")):
        relative = f"{root}/{path.relative_to(install).as_posix()}"
        if path.is_symlink():
            files[relative] = LayerSymlink(os.readlink(path))
        elif path.is_file():
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            files[relative] = LayerFile(mode, path.stat().st_size, path.open("rb"))
    return files


def build_cpython_layer(
    version: str, platform: str, cache: Path, compression: Compression = "gzip"
) -> tuple[BuiltLayer, PythonInfo]:
    """The managed CPython layer for `version` on `platform`, and the interpreter it holds."""
    python = PythonInfo(version, f"{PREFIX}/bin/python{version}")
    fields = f"{CPYTHON_LAYER_FORMAT} {version} {platform} {python_source()}"
    key = blake3.blake3(fields.encode()).hexdigest()
    if (layer := cached_layer(cache, key, compression)) is not None:
        return layer, python
    scratch = Path(tempfile.mkdtemp(prefix="bakery-cpython-"))
    try:
        files = _layer_files(_download(version, platform, scratch))
        try:
            layer = store_layer(cache, key, f"cpython {version}", files, compression)
        finally:
            for file in files.values():
                if isinstance(file, LayerFile):
                    file.content.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return layer, python
