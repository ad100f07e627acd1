"""The bake's layers → files in a host venv: what the image holds under its env prefix.

Package layers hold `<prefix>/lib/pythonX.Y/site-packages/...`, `<prefix>/bin/...` scripts and
occasionally data files under `<prefix>`; they land at the same relative paths in the venv,
lower layers first so a higher one wins, as in the image. The environment layer's own files
(pyvenv.cfg and the python links to the in-image interpreter) are skipped: the host venv has
its own. Anything outside the prefix (a managed CPython the host does not need) is skipped,
and only regular files and directories at relative, `..`-free paths are accepted.
"""

import shlex
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from bakery.layers.tarball import read_layer
from deployer.exceptions import AppConfigError
from deployer.runtimes.process.image import LayerBlob

_SIMPLE_SHEBANG = 127
"""Longest `#!` line every kernel honours; longer interpreter paths go through /bin/sh."""


def unpack(
    layers: Iterable[LayerBlob], prefix: str, venv: Path, *, python: str, interpreter: Path
) -> None:
    """Write the files `layers` hold under `prefix` into `venv` (a fresh pythonX.Y venv).

    Scripts whose shebang names the in-image `<prefix>/bin/python` are re-pointed at
    `interpreter`: the venv's python where the venv will finally be.
    """
    root = PurePosixPath(prefix.strip("/")).parts
    venv_own = {"pyvenv.cfg", "lib64", "bin/python", "bin/python3", f"bin/python{python}"}
    in_image = f"#!{prefix}/bin/python".encode()
    on_host = shebang(str(interpreter))
    for layer in layers:
        for member, data in read_layer(layer.path, layer.media_type):
            parts = _safe_parts(member.name)
            if parts[: len(root)] != root or len(parts) == len(root):
                continue
            relative = "/".join(parts[len(root) :])
            if relative in venv_own:
                continue
            target = venv / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if data is None:
                raise AppConfigError(
                    f"layer {layer.path.name} holds {member.name!r}, which is not a regular file "
                    "or directory; a bakery package layer never does, so it is refused"
                )
            first, newline, rest = data.partition(b"\n")
            if relative.startswith("bin/") and first == in_image:
                data = on_host + newline + rest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)  # a higher layer's file replaces a lower one's
            with target.open("xb") as out:
                out.write(data)
            target.chmod(0o755 if member.mode & 0o111 else 0o644)


def shebang(interpreter: str) -> bytes:
    """`#!interpreter`, or for a long or spaced path the /bin/sh trampoline that pip and
    pypa/installer write (the script re-executes itself with the interpreter)."""
    line = f"#!{interpreter}".encode()
    if len(line) < _SIMPLE_SHEBANG and " " not in interpreter:
        return line
    quoted = shlex.quote(interpreter).encode()
    return b"#!/bin/sh\n'''exec' " + quoted + b' "$0" "$@"\n' + b"' '''"


def _safe_parts(name: str) -> tuple[str, ...]:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise AppConfigError(
            f"a layer of the image holds {name!r}, which would land outside the environment"
        )
    return path.parts
