"""The embedded default base: Debian bookworm + python3, built once with mmdebstrap.

It lives in the local OCI layout under `base-debian-bookworm-<arch>-<recipe id>`, so bakes on
a fresh machine need no registry; the first bake builds it (about 20-50 s) and later ones
reuse it. The recipe id changes with the package list, so a bakery that needs more in its
base (say libstdc++ for manylinux wheels) builds a new one rather than reuse an older one.
"""

from collections.abc import Callable
from typing import Any

from bakery import config
from bakery.base.recipe import recipe_id
from bakery.oci.cache import BlobCache
from bakery.oci.layout import LAYOUT_SCHEME, LayoutPublisher
from stagekit.progress import Reporter


def default_base_tag(platform: str) -> str:
    return f"{config.DEFAULT_BASE_TAG}-{platform.rpartition('/')[2]}-{recipe_id(platform=platform)}"


def default_base_ready(platform: str) -> bool:
    """Whether the default base for `platform` is built already (nothing to build)."""
    return LayoutPublisher(config.image_layout_dir()).find(default_base_tag(platform)) is not None


def ensure_default_base(
    blobs: BlobCache, platform: str, reporter: Reporter, *, force: bool = False
) -> str:
    """The default base's layout reference, building and storing it first if needed."""
    layout = LayoutPublisher(config.image_layout_dir())
    tag = default_base_tag(platform)
    if force or not default_base_ready(platform):
        from bakery.base.debian import build_debian_base

        reporter.info(
            f"Building the default base image (Debian bookworm, python3, system libs, {platform})"
        )
        layout.publish(build_debian_base(blobs, platform=platform, progress=reporter.progress), tag)
    return f"{LAYOUT_SCHEME}{layout.directory}:{tag}"


def build_default_base(
    platform: str, *, force: bool = False, logger: Callable[[str], Any] | None = None
) -> str:
    """`bakery base build`: ensure the default base exists (rebuilt with `force`)."""
    blobs = BlobCache(config.bake_cache_dir() / "blobs")
    return ensure_default_base(blobs, platform, Reporter("bakery.base", logger), force=force)
