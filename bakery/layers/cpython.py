"""A managed CPython as one layer, for when the base image's Python is not the one asked for.

uv downloads a relocatable python-build-standalone build for the *target* platform and its
files become a layer at /opt/bakery/python. Nothing of a target build runs on the build
machine, except that a build for the host's own platform also compiles the layers' bytecode
(`bakery.layers.bytecode`). The builds come from one source, chosen by the environment, and
are kept in the cache (`python_install_dir`):

- `BAKERY_PYTHON_DOWNLOADS`: URL or path of a uv downloads JSON (uv's download-metadata.json
  format, passed as `--python-downloads-json-url`), for organisations that host their own
  builds and list them there;
- else `BAKERY_PYTHON_MIRROR`: a prefix replacing the GitHub release host of uv's own list;
- else uv's default, the GitHub releases of python-build-standalone.
"""

import io
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

import blake3

from bakery.base.model import PythonInfo
from bakery.errors import ImageBakingException
from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import Compression, LayerEntry, LayerFile, LayerSymlink
from bakery.lock import uv_binary
from bakery.platforms import ARCHITECTURES

PREFIX = "/opt/bakery/python"
DEFAULT_SOURCE = "https://github.com/astral-sh/python-build-standalone/releases/download"
CPYTHON_LAYER_FORMAT = 2
"""Bump whenever the bytes a given build turns into change; old cache entries then miss."""
DOWNLOAD_TIMEOUT = 600.0


class PythonSource(NamedTuple):
    """Where builds come from: `kind` "downloads" (a downloads JSON) or "mirror" (a prefix)."""

    kind: str
    location: str

    def uv_env(self) -> dict[str, str]:
        """The environment that points uv at exactly this source (an inherited uv setting for
        the other kind would otherwise mix in)."""
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in ("UV_PYTHON_INSTALL_MIRROR", "UV_PYTHON_DOWNLOADS_JSON_URL")
        }
        if self.kind == "downloads":
            env["UV_PYTHON_DOWNLOADS_JSON_URL"] = self.location
        else:
            env["UV_PYTHON_INSTALL_MIRROR"] = self.location
        return env

    def advice(self, version: str, platform: str) -> str:
        """What to do when nothing for `version` could be downloaded from here."""
        if self.kind == "downloads":
            return (
                "Check that BAKERY_PYTHON_DOWNLOADS names a reachable uv downloads JSON that "
                f"lists a CPython {version} build for {platform} at a reachable URL"
            )
        return "Set BAKERY_PYTHON_MIRROR to a reachable python-build-standalone mirror"


def python_source() -> PythonSource:
    """The source in effect: `BAKERY_PYTHON_DOWNLOADS`, else `BAKERY_PYTHON_MIRROR`, else
    uv's default host."""
    if downloads := os.environ.get("BAKERY_PYTHON_DOWNLOADS"):
        return PythonSource("downloads", downloads)
    return PythonSource("mirror", os.environ.get("BAKERY_PYTHON_MIRROR") or DEFAULT_SOURCE)


def _uv_error(stderr: str) -> str:
    """uv's first error with its innermost cause, e.g. "Failed to install cpython-3.12.1-...:
    Connection refused"; the whole report goes into the exception's details."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    causes = [line.removeprefix("cause: ") for line in lines if line.startswith("cause: ")]
    reason = ": ".join([*errors[:1], *causes[-1:]])
    return reason or (lines[-1] if lines else "uv gave no reason")


def python_install_dir(cache: Path, source: PythonSource) -> Path:
    """Where uv keeps the builds from `source`: one directory per source, so a build from
    one is never taken for a build from another."""
    name = blake3.blake3(f"{source.kind} {source.location}".encode()).hexdigest()[:16]
    return cache / "python" / name


def install_cpython(version: str, platform: str, source: PythonSource, cache: Path) -> Path:
    """The build of `version` for `platform` from `source`, installed by uv under
    `python_install_dir` (downloaded only the first time); returns its directory.

    Builds are kept: one for the host's platform is also what compiles the image's bytecode
    (`bakery.layers.bytecode`)."""
    into = python_install_dir(cache, source)
    into.mkdir(parents=True, exist_ok=True)
    request = f"cpython-{version}-linux-{ARCHITECTURES[platform]}-gnu"
    command = [uv_binary(), "python", "install", "--no-config", "--no-bin", "--no-progress"]
    try:
        completed = subprocess.run(
            [*command, "--install-dir", str(into), request],
            capture_output=True,
            text=True,
            env=source.uv_env(),
            timeout=DOWNLOAD_TIMEOUT,
        )
        reason = _uv_error(completed.stderr) if completed.returncode else None
        details = completed.stderr.strip() or None
    except subprocess.TimeoutExpired:
        reason, details = f"no answer within {DOWNLOAD_TIMEOUT:.0f}s", None
    install = None if reason else _installed(into, request)
    if reason is None and install is None:
        reason = f"uv left no {request} in {into}"
    if reason is not None or install is None:
        raise ImageBakingException(
            f"cannot download CPython {version} for {platform} from {source.location}: "
            f"{reason}. {source.advice(version, platform)}, "
            f"or use a base image that has Python {version}.",
            details=details,
        )
    return install


def _installed(into: Path, request: str) -> Path | None:
    """The installation uv made for `request` (cpython-3.12-linux-x86_64-gnu): uv links that
    minor-version name to the full one (cpython-3.12.1-linux-x86_64-gnu)."""
    link = into / request
    if link.is_dir():
        return link.resolve()
    prefix, _, rest = request.partition("-linux-")
    matches = sorted(into.glob(f"{prefix}.*-linux-{rest}"))
    return matches[-1] if matches and matches[-1].is_dir() else None


def _layer_files(install: Path) -> dict[str, LayerEntry]:
    """The build's files at PREFIX, its sysconfig data pointed there too.

    uv rewrites the `/install` prefix python-build-standalone builds are configured with to
    the directory it installed into, which exists only on this machine: left as is,
    `sysconfig` in the image would name it, and the layer's bytes would depend on the cache
    directory."""
    files: dict[str, LayerEntry] = {}
    root = PREFIX.lstrip("/")
    sysconfig = set(install.glob("lib/python*/_sysconfigdata_*.py"))
    for path in sorted(install.rglob("*")):
        relative = f"{root}/{path.relative_to(install).as_posix()}"
        if path.is_symlink():
            files[relative] = LayerSymlink(os.readlink(path))
        elif path in sysconfig:
            data = _relocated(path.read_text(), install).encode()
            files[relative] = LayerFile(0o644, len(data), io.BytesIO(data))
        elif path.is_file():
            stat = path.stat()
            mode = 0o755 if stat.st_mode & 0o111 else 0o644
            files[relative] = LayerFile(mode, stat.st_size, path)
    return files


def _relocated(text: str, install: Path) -> str:
    for written_as in {str(install), str(install.resolve())}:
        text = text.replace(written_as, PREFIX)
    return text


def build_cpython_layer(
    version: str, platform: str, cache: Path, compression: Compression = "gzip"
) -> tuple[BuiltLayer, PythonInfo]:
    """The managed CPython layer for `version` on `platform`, and the interpreter it holds.

    The cache key names the source, so builds from another source are downloaded anew.
    """
    python = PythonInfo(version, f"{PREFIX}/bin/python{version}")
    source = python_source()
    fields = f"{CPYTHON_LAYER_FORMAT} {version} {platform} {source.kind} {source.location}"
    key = blake3.blake3(fields.encode()).hexdigest()
    if (layer := cached_layer(cache, key, compression)) is not None:
        return layer, python
    install = install_cpython(version, platform, source, cache)
    layer = store_layer(cache, key, f"cpython {version}", _layer_files(install), compression)
    return layer, python
