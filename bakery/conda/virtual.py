"""The virtual packages of a target: what the solver may assume of the machine the image runs on.

`__glibc` is the base image's C library, read from the image (its `org.bakery.glibc` label,
else the version in the newest layer that has glibc's `ldd` script or `libc.so.6`, whichever
comes first: glibc ships both, and `usr/bin` comes tens of MB before `usr/lib` in a Debian
base's layer), never the build machine's; a base without glibc (musl, static) has none, so
packages that need it do not solve. `__unix`, `__linux` (the oldest kernel assumed,
`CONDA_OVERRIDE_LINUX` or 5.10, as conda-lock assumes) and `__archspec` (the target's
generic architecture) complete it; `__cuda` is there only when the bake names the CUDA
driver version its hosts have (`cuda=`). The glibc found is kept per base digest, so a base
is read once.
"""

import contextlib
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bakery.base.model import BaseImage
from bakery.errors import ImageBakingException, room_in
from bakery.oci.model import Layer
from bakery.platforms import ARCHITECTURES
from stagekit.files import write_atomic

GLIBC_LABEL = "org.bakery.glibc"
LINUX_VERSION = "5.10"
_LIBC = re.compile(r"(?:usr/)?lib(?:64|/[a-z0-9_]+-linux-gnu)?/libc(?:\.so\.6|-(\d+\.\d+)\.so)")
_VERSION = re.compile(rb"GNU C Library [^\n]*?version (\d+\.\d+)")
_LDD = re.compile(r"(?:usr/)?bin/ldd")
_LDD_VERSION = re.compile(rb"ldd \([^)\n]*\) (\d+\.\d+)")  # glibc's `ldd --version` line


def virtual_packages(
    base: BaseImage, platform: str, cache: Path, cuda: str | None = None
) -> list[Any]:
    """rattler's GenericVirtualPackages for images of `platform` on `base`, with `__cuda`
    when the hosts' CUDA driver version is given."""
    import os

    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    def package(name: str, version: str, build: str = "0") -> GenericVirtualPackage:
        return GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))

    found = [
        package("__unix", "0"),
        package("__linux", os.environ.get("CONDA_OVERRIDE_LINUX") or LINUX_VERSION),
        package("__archspec", "1", ARCHITECTURES[platform]),
    ]
    glibc = base_glibc(base, platform, cache)
    if glibc is not None:
        found.append(package("__glibc", glibc))
    if cuda is not None:
        found.append(package("__cuda", cuda))
    return found


def base_glibc(base: BaseImage, platform: str, cache: Path) -> str | None:
    """The glibc version X.Y of `base` (None: it has none), read once per base digest."""
    labels = (base.config.get("config") or {}).get("Labels") or {}
    if labels.get(GLIBC_LABEL):
        return str(labels[GLIBC_LABEL])
    record = cache / "conda" / "bases" / f"{base.digest.removeprefix('sha256:')}.json"
    key = platform.replace("/", "-")
    try:
        known = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        known = {}
    if key in known:
        return known[key]
    from bakery.base.load import readable_layers
    from bakery.oci.cache import BlobCache

    layers = readable_layers(base, BlobCache(cache / "blobs"))  # meanwhile copied in
    version = next(filter(None, (_layer_glibc(layer) for layer in reversed(layers))), None)
    record.parent.mkdir(parents=True, exist_ok=True)
    with room_in(record.parent, "BAKERY_CACHE_DIR"):
        write_atomic(record, json.dumps({**known, key: version}, sort_keys=True).encode())
    return version


def _layer_glibc(layer: Layer) -> str | None:
    for member, read in _members(layer):
        name = member.name.removeprefix("./")
        if _LDD.fullmatch(name) and member.isfile() and member.size < 1 << 20:
            found = _LDD_VERSION.search(read())
            if found:  # else not glibc's script: libc.so.6 decides
                return found[1].decode()
            continue
        match = _LIBC.fullmatch(name)
        if match is None:
            continue
        if match[1]:
            return match[1]
        if member.isfile():
            found = _VERSION.search(read())
            if found:
                return found[1].decode()
    return None


def _members(layer: Layer) -> Iterator[tuple[tarfile.TarInfo, Any]]:
    """Each entry of a (gzip or plain) layer with a function reading its data; gzip is
    inflated by ISA-L (twice zlib's speed: a base layer is tens of MB)."""
    from isal import igzip

    try:
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(layer.path.open("rb"))
            if raw.read(2) == b"\x1f\x8b":
                raw.seek(0)
                raw = stack.enter_context(igzip.open(raw))
            else:
                raw.seek(0)
            tar = stack.enter_context(tarfile.open(fileobj=raw, mode="r|*"))
            for member in tar:
                yield member, lambda m=member: tar.extractfile(m).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageBakingException(
            f"cannot read base layer {layer.digest} ({layer.media_type}) to find its glibc: "
            f"{exc}; set the base image label {GLIBC_LABEL} (e.g. 2.36) instead"
        ) from exc
