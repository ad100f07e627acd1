"""What the embedded Debian base is made of: the package list and the mmdebstrap command.

Kept apart from the build (`debian.py`) because every bake on the default base needs the
recipe id (it names the base's tag) and none needs the builder unless the base is missing.
"""

import hashlib

from bakery.errors import ImageBakingException
from bakery.platforms import DEFAULT_PLATFORM

SUITE_LABEL = "org.bakery.base.suite"
# What manylinux wheels may take from the system: the libraries of auditwheel's policy
# `lib_whitelist` that Debian ships outside a graphics stack (README, "Base images").
MANYLINUX_LIBRARIES = (
    "libc6",  # libc, libm, libmvec, libpthread, libdl, librt, libanl, libutil, libresolv, libnsl
    "libgcc-s1",
    "libstdc++6",
    "libatomic1",
    "zlib1g",
    "libexpat1",
    "libglib2.0-0",  # libglib, libgobject, libgthread
)
APT = ("apt",)
"""The execution builder installs `system_packages` and sdist build tools with it, in BuildKit."""
PACKAGES = ("python3", "ca-certificates", *APT, *MANYLINUX_LIBRARIES)
_RECIPE_VERSION = 1  # bump when the layer's bytes change for the same packages (rootfs.py)
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
_DROP_HOST_FILES = 'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"'
# OCI platform "arch[/variant]" -> Debian architecture
_DEBIAN_ARCH = {
    "amd64": "amd64",
    "arm64": "arm64",
    "arm64/v8": "arm64",
    "arm/v7": "armhf",
    "arm/v5": "armel",
    "386": "i386",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def recipe_id(suite: str = "bookworm", platform: str = DEFAULT_PLATFORM) -> str:
    """12 hex digits naming what `build_debian_base` makes of `suite` and `platform` apart
    from the mirror's package versions: the mmdebstrap command (packages, hooks, arch), the
    image config's environment and the layer format. A changed recipe means a new base."""
    os_, arch, variant = split_platform(platform)
    recipe = [_RECIPE_VERSION, os_, *mmdebstrap_command(suite, arch, variant), *ENV]
    return hashlib.sha256(repr(recipe).encode()).hexdigest()[:12]


def split_platform(platform: str) -> tuple[str, str, str | None]:
    os_, _, arch_variant = platform.partition("/")
    arch, _, variant = arch_variant.partition("/")
    if os_ != "linux" or arch_variant not in _DEBIAN_ARCH:
        raise ImageBakingException(
            f"cannot build a Debian base for platform {platform!r}: use one of "
            + ", ".join(f"linux/{name}" for name in _DEBIAN_ARCH)
        )
    return os_, arch, variant or None


def mmdebstrap_command(suite: str, arch: str, variant: str | None) -> list[str]:
    """Everything but the target and the mirror, which follow the suite."""
    debian_arch = _DEBIAN_ARCH[f"{arch}/{variant}" if variant else arch]
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        f"--include={','.join(PACKAGES)}",
        "--format=tar",
        f"--architectures={debian_arch}",
        f"--customize-hook={_DROP_HOST_FILES}",
        suite,
    ]
