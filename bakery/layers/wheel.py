"""A wheel -> one layer holding it installed at its in-image prefix, without running its code.

pypa/installer does the installing (scheme mapping, `#!python` shebang rewriting, console
scripts, RECORD, INSTALLER); our destination only collects what it would write, in memory
(large files spill to a temporary file), and `tarball.write_layer` turns that into a layer,
with the modules' bytecode (`bytecode.compiled`) when a compiler for the target Python is at
hand. The result depends on the wheel's bytes, the prefix, the target Python, the compiler
and the layer format, which is exactly what the cache key hashes.
"""

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, cast

import blake3
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import Scheme, copyfileobj_with_hashing

from bakery.config import ENV_PREFIX
from bakery.errors import ImageBakingException
from bakery.layers.bytecode import Compiler, compiled
from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import Compression, LayerFile
from bakery.spec import python_tag

LAYER_FORMAT_VERSION = 2
"""Bump whenever the bytes a given wheel turns into change; old cache entries then miss."""

INSTALLER_NAME = b"bakery\n"
_SPOOL_LIMIT = 8 << 20
_WHITEOUT = ".wh."


def wheel_layer_key(sha256: str, prefix: str, python: str, compiler: Compiler | None) -> str:
    """Cache key of a wheel's layer: blake3 over everything that decides its bytes."""
    fields = {
        "artifact_sha256": sha256,
        "prefix": prefix,
        "python_tag": python_tag(python),
        "bytecode": compiler and compiler.identity(),
        "layer_format": LAYER_FORMAT_VERSION,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return blake3.blake3(canonical.encode()).hexdigest()


def build_wheel_layer(
    wheel: Path,
    *,
    filename: str,
    sha256: str,
    python: str,
    cache: Path,
    compiler: Compiler | None,
    prefix: str = ENV_PREFIX,
    compression: Compression = "gzip",
) -> BuiltLayer:
    """The layer of the wheel at `wheel` for target Python `python` (e.g. "3.11"), with the
    bytecode `compiler` (a CPython `python`) writes, or none when it is None.

    `filename` is the wheel's real name (the artifact cache stores it under its digest) and
    `sha256` its verified digest. Reused from `cache` when built before, else built there.
    """
    if compiler is not None and not compiler.compiles_for(python):
        raise ValueError(f"{compiler.executable} cannot compile for Python {python}")
    key = wheel_layer_key(sha256, prefix, python, compiler)
    if (layer := cached_layer(cache, key, compression)) is not None:
        return layer
    files = stage_wheel(wheel, filename=filename, python=python, prefix=prefix)
    try:
        if compiler is None:
            return store_layer(cache, key, filename, files, compression)
        site_packages = _site_packages(prefix, python).lstrip("/")
        with compiled(files, site_packages, compiler, filename) as pycs:
            return store_layer(cache, key, filename, {**files, **pycs}, compression)
    finally:
        _close(files)


def _close(files: dict[str, LayerFile]) -> None:
    """Release the spooled contents a staged wheel holds."""
    for file in files.values():
        if not isinstance(file.content, Path):
            file.content.close()


def stage_wheel(
    wheel: Path, *, filename: str, python: str, prefix: str = ENV_PREFIX
) -> dict[str, LayerFile]:
    """Install `wheel` into memory: {path relative to `/`: file} as it would sit in the image."""
    site_packages = _site_packages(prefix, python)
    destination = _MemoryDestination(
        scheme_dict={
            "purelib": site_packages,
            "platlib": site_packages,
            "scripts": f"{prefix}/bin",
            "data": prefix,
            "headers": f"{prefix}/include/site/python{python}/{filename.split('-', 1)[0]}",
        },
        interpreter=f"{prefix}/bin/python",
        script_kind="posix",
    )
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.filename = filename  # installer reads name and version from it
            install(WheelFile(archive), destination, {"INSTALLER": INSTALLER_NAME})
    except (InstallerError, ValueError, KeyError, zipfile.BadZipFile, FileExistsError) as exc:
        _close(destination.files)
        raise ImageBakingException(
            f"Cannot unpack {filename}: {exc}. The wheel is malformed; pin another version."
        ) from None
    return destination.files


def _site_packages(prefix: str, python: str) -> str:
    return f"{prefix}/lib/python{python}/site-packages"


@dataclass
class _MemoryDestination(SchemeDictionaryDestination):
    """installer's scheme destination, collecting files instead of writing them to disk.

    Reusing `SchemeDictionaryDestination` keeps installer's own path checks (nothing may
    escape its scheme directory), shebang fixing and RECORD writing.
    """

    files: dict[str, LayerFile] = field(default_factory=dict)

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        target = self._path_with_destdir(scheme, path).as_posix().lstrip("/")
        if target in self.files:
            raise FileExistsError(f"{target} is written twice")
        if os.path.basename(target).startswith(_WHITEOUT):
            raise ValueError(f"{target} would be an overlay whiteout and delete image files")
        # Outlives this call: the layer writer reads it, and the caller closes it.
        spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT))  # noqa: SIM115
        digest, size = copyfileobj_with_hashing(stream, spool, self.hash_algorithm)
        mode = 0o755 if is_executable or scheme == "scripts" else 0o644
        self.files[target] = LayerFile(mode=mode, size=size, content=spool)
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    def write_script(self, name: str, module: str, attr: str, section: str) -> RecordEntry:
        kind = cast(Literal["console", "gui"], section)
        script_name, data = Script(name, module, attr, kind).generate(self.interpreter, "posix")
        return self.write_to_fs(Scheme("scripts"), script_name, io.BytesIO(data), True)
