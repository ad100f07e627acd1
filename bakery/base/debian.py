"""Build a minimal Debian + python3 base image with mmdebstrap, byte-for-byte reproducibly.

mmdebstrap runs with SOURCE_DATE_EPOCH set, which makes its own tarball reproducible (it
clamps mtimes and drops logs, the ldconfig aux-cache, apt lists and caches) and makes
py3compile write hash-checked .pyc files, so the fixed mtimes of the layer never make them
stale. resolv.conf and hostname are removed: they are the build host's, and every container
runtime bind-mounts its own. The rootfs is then rewritten by `normalise_rootfs`, and the
config carries no timestamp, so the same package versions give the same image digest.

mmdebstrap runs contained (`bakery.base.contained`): whatever interrupts a build, no mount,
process or temp tree of it is left behind.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from bakery.base.contained import run_contained, scratch_directory
from bakery.base.python import EXECUTABLE_LABEL, VERSION_LABEL, pick_python
from bakery.base.recipe import (
    ENV,
    SUITE_LABEL,
    mmdebstrap_command,
    split_platform,
)
from bakery.base.rootfs import normalise_rootfs
from bakery.errors import ImageBakingException
from bakery.oci.cache import BlobCache
from bakery.oci.model import OCI_CONFIG, Image, canonical_json
from bakery.platforms import DEFAULT_PLATFORM
from reprotar.tar import FIXED_MTIME
from stagekit.progress import ProgressCallback

_STAGE = "bootstrap debian"


def build_debian_base(
    cache: BlobCache,
    *,
    suite: str = "bookworm",
    platform: str = DEFAULT_PLATFORM,
    mirror: str | None = None,
    progress: ProgressCallback | None = None,
) -> Image:
    """Bootstrap Debian `suite` with python3, CA certificates and the system libraries
    manylinux wheels may link (`MANYLINUX_LIBRARIES`) as a one-layer image.

    `mirror` is a URL (or a full `deb ...` line) replacing deb.debian.org and its security
    and updates suites. Needs root, mmdebstrap and util-linux (unshare, setpriv); 20-50 s.
    """
    os_, arch, variant = split_platform(platform)
    command = mmdebstrap_command(suite, arch, variant)
    with scratch_directory("bakery-base-") as scratch:
        rootfs = scratch / "rootfs.tar"
        target = [str(rootfs)] + ([mirror] if mirror else [])
        _run(command + target, scratch, suite, progress)
        built = normalise_rootfs(rootfs, cache, progress)
    python = pick_python(built.paths)
    if python is None:
        raise ImageBakingException(
            f"Debian {suite} bootstrapped without a usr/bin/python3.X; "
            "does this suite still ship python3?"
        )
    config: dict[str, Any] = {
        "architecture": arch,
        "os": os_,
        "config": {
            "Env": ENV,
            "Cmd": ["python3"],
            "Labels": {
                SUITE_LABEL: suite,
                VERSION_LABEL: python.version,
                EXECUTABLE_LABEL: python.executable,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [built.layer.diff_id]},
        "history": [{"created_by": " ".join(command), "comment": "bakery base"}],
    }
    if variant:
        config["variant"] = variant
    config_digest = cache.put_bytes(canonical_json(config))
    return Image(config=cache.blob(config_digest, OCI_CONFIG), layers=(built.layer,))


def _run(command: list[str], scratch: Path, suite: str, progress: ProgressCallback | None) -> None:
    """Run mmdebstrap with its temp chroot in `scratch`."""
    if shutil.which("mmdebstrap") is None:
        raise ImageBakingException(
            "mmdebstrap is not installed: `apt-get install mmdebstrap` (Debian/Ubuntu), "
            "or use a prebuilt base image"
        )
    if os.geteuid() != 0:
        raise ImageBakingException(
            "building the Debian base needs root (mmdebstrap's root mode creates device "
            "nodes and chroots): run it as root, or use a prebuilt base image"
        )
    if progress:
        progress(_STAGE, 0, 1)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(FIXED_MTIME), "TMPDIR": str(scratch)}
    started = time.monotonic()
    result = run_contained(command, env)
    if result.returncode != 0:
        output = result.stdout.strip()
        hint = _failure_hint(output, suite, scratch)
        last = output.splitlines()[-1] if output else "no output"
        raise ImageBakingException(
            f"mmdebstrap failed after {time.monotonic() - started:.0f}s ({last}); {hint}",
            details=output,
        )
    if progress:
        progress(_STAGE, 1, 1)


def _failure_hint(output: str, suite: str, scratch: Path) -> str:
    if "No space left on device" in output or "enough free space" in output:
        return (
            f"the disk holding {scratch.parent} is full (mmdebstrap unpacks the base there, "
            "about 300 MB): free space on it, or point TMPDIR at a disk with room"
        )
    if any(s in output for s in ("Could not resolve", "Failed to fetch", "Temporary")):
        return "the Debian mirror is unreachable: check network access (or pass a reachable mirror)"
    if "unshare failed" in output:
        return (
            "this machine does not allow new mount and PID namespaces (a container without "
            "CAP_SYS_ADMIN?): build the base on a host that does, or use a prebuilt base image"
        )
    return f"is {suite!r} a Debian suite, and the platform runnable here?"
