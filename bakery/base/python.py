"""Which Python a base image ships, found without running the image.

The bakery installs wheels for one interpreter and rewrites shebangs to its path, so it has
to know both before it resolves anything. A label is the cheap, explicit answer; images
without it (python:3.x-slim, plain distro images) are read layer by layer, top layer first,
streaming each tarball's headers, the way an overlay filesystem would resolve the paths.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Sequence
from posixpath import dirname
from typing import Any

from bakery.base.model import PythonInfo
from bakery.errors import ImageBakingException
from bakery.oci.model import Layer

VERSION_LABEL = "org.bakery.python"
EXECUTABLE_LABEL = "org.bakery.python.executable"

_INTERPRETER = re.compile(r"usr/(?:local/)?bin/python3\.(\d+)")
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


def detect_python(config: dict[str, Any], layers: Sequence[Layer]) -> PythonInfo | None:
    """The image's Python: its labels if set, else the newest `python3.X` in the layers.

    With only the version label, the executable is taken to be Debian's
    `/usr/bin/python<version>`; images that put it elsewhere set the executable label too.
    """
    labels = (config.get("config") or {}).get("Labels") or {}
    version = labels.get(VERSION_LABEL)
    if version:
        return PythonInfo(version, labels.get(EXECUTABLE_LABEL) or f"/usr/bin/python{version}")
    return pick_python(_visible_interpreters(layers))


def pick_python(paths: Iterable[str]) -> PythonInfo | None:
    """The newest interpreter among rootfs `paths`; /usr/local wins a tie, as on PATH."""
    found = []
    for path in paths:
        match = _INTERPRETER.fullmatch(path)
        if match:
            found.append((int(match[1]), path.startswith("usr/local/"), path))
    if not found:
        return None
    minor, _, path = max(found)
    return PythonInfo(f"3.{minor}", "/" + path)


def _visible_interpreters(layers: Sequence[Layer]) -> set[str]:
    """Interpreter paths (files or symlinks) not hidden by a whiteout in a higher layer."""
    visible: set[str] = set()
    hidden: set[str] = set()  # paths whited out above the layer being read
    opaque: set[str] = set()  # directories made opaque above the layer being read
    for layer in reversed(layers):
        whiteouts, opaques = set(), set()
        for member in _members(layer):
            path = member.name.removeprefix("./").lstrip("/").rstrip("/")
            parent, _, base = path.rpartition("/")
            if base == _OPAQUE:
                opaques.add(parent)
            elif base.startswith(_WHITEOUT):
                whiteouts.add(f"{parent}/{base[len(_WHITEOUT) :]}".lstrip("/"))
            elif (
                (member.isfile() or member.issym())
                and _INTERPRETER.fullmatch(path)
                and not _covered(path, hidden, opaque)
            ):
                visible.add(path)
        hidden |= whiteouts
        opaque |= opaques
    return visible


def _covered(path: str, hidden: set[str], opaque: set[str]) -> bool:
    """Whether a lower layer's `path` is hidden by whiteouts or opaque dirs seen above."""
    if path in hidden:
        return True
    parent = dirname(path)
    while parent:
        if parent in hidden or parent in opaque:
            return True
        parent = dirname(parent)
    return "" in opaque


def _members(layer: Layer) -> Iterable[tarfile.TarInfo]:
    """The layer's tar headers, streamed (gzip or plain tar); file data is skipped."""
    try:
        with tarfile.open(layer.path, mode="r|*") as tar:
            yield from tar
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageBakingException(
            f"cannot read layer {layer.digest} ({layer.media_type}) to find its Python: {exc}; "
            f"only gzip and plain tar layers can be scanned — set the image labels "
            f"{VERSION_LABEL} and {EXECUTABLE_LABEL} instead"
        ) from exc
