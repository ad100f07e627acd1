"""The environment layer: turns the prefix the package layers fill into a virtual env.

Package layers only put files under `<prefix>/lib/pythonX.Y/site-packages` and `<prefix>/bin`;
this small top layer adds `pyvenv.cfg` and `bin/python*` links to the base image's
interpreter, so `<prefix>/bin/python` (the shebang of every entry point) starts that
interpreter with the prefix's site-packages, exactly like `python -m venv` would.
"""

import io
import json
import posixpath
from pathlib import Path

import blake3

from bakery.base.model import PythonInfo
from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import Compression, LayerEntry, LayerFile, LayerSymlink

ENV_LAYER_FORMAT = 1


def _files(prefix: str, python: PythonInfo) -> dict[str, LayerEntry]:
    root = prefix.lstrip("/")
    config = (
        f"home = {posixpath.dirname(python.executable)}\n"
        "include-system-site-packages = false\n"
        f"version = {python.version}\n"
        f"executable = {python.executable}\n"
    ).encode()
    files: dict[str, LayerEntry] = {
        f"{root}/pyvenv.cfg": LayerFile(0o644, len(config), io.BytesIO(config)),
        f"{root}/lib64": LayerSymlink("lib"),
    }
    for name in ("python", "python3", f"python{python.version}"):
        files[f"{root}/bin/{name}"] = LayerSymlink(python.executable)
    return files


def build_env_layer(
    cache: Path, prefix: str, python: PythonInfo, compression: Compression = "gzip"
) -> BuiltLayer:
    """The (cached) environment layer for `prefix` on top of interpreter `python`."""
    fields = [ENV_LAYER_FORMAT, prefix, python.version, python.executable]
    key = blake3.blake3(json.dumps(fields).encode()).hexdigest()
    if (layer := cached_layer(cache, key, compression)) is not None:
        return layer
    files = _files(prefix, python)
    return store_layer(cache, key, "environment", files, compression)
