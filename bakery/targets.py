"""Choosing where a baked image goes: a registry, the local OCI layout, or the Docker daemon.

Each publisher is imported when chosen: a bake into the local layout loads no HTTP client.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bakery import config
from bakery.errors import ImageBakingException, quoted
from bakery.oci.publish import Publisher
from bakery.oci.reference import Reference

if TYPE_CHECKING:
    from bakery.oci.remote import Step

Target = Literal["registry", "layout", "daemon"]
TARGETS: tuple[Target, ...] = ("registry", "layout", "daemon")


def open_target(
    target: str | None,
    registry: str | None,
    on_step: "Callable[[Step, str], None] | None" = None,
) -> Publisher:
    """The publisher for `target` (default: the registry if one is configured, else the
    layout directory); `registry` overrides BAKERY_REGISTRY; `on_step` sees registry pushes."""
    chosen, registry = _choose(target, registry)
    if chosen == "registry":
        if not registry:
            raise ImageBakingException(
                "target 'registry' needs a registry: pass registry='host:port/repo' "
                "or set BAKERY_REGISTRY"
            )
        reference = Reference.parse(registry)
        if reference.tag or reference.digest:
            raise ImageBakingException(
                f"registry {quoted(registry)} names an image; give a repository like host:port/repo"
            )
        from bakery.oci.remote import RegistryPublisher

        return RegistryPublisher(reference, on_step=on_step)
    if chosen == "layout":
        from bakery.oci.layout import LayoutPublisher

        return LayoutPublisher(config.image_layout_dir())
    if chosen == "daemon":
        from bakery.oci.daemon import DaemonPublisher

        return DaemonPublisher()
    raise ImageBakingException(f"unknown target {quoted(target)}; use one of {', '.join(TARGETS)}")


def _choose(target: str | None, registry: str | None) -> tuple[str, str | None]:
    """(target name, registry): the registry if one is given or configured, else the layout."""
    registry = registry or config.registry()
    return target or ("registry" if registry else "layout"), registry


def target_name(target: str | None, registry: str | None) -> str:
    """Where `open_target(target, registry)` publishes, as one line: `registry host/repo`,
    `layout DIR` or `daemon HOST`. What records about a target's tags are keyed by."""
    import os

    chosen, registry = _choose(target, registry)
    if chosen == "registry":
        return f"registry {registry}"
    if chosen == "layout":
        return f"layout {config.image_layout_dir().resolve()}"
    return f"{chosen} {os.environ.get('DOCKER_HOST') or 'local'}"


def untag(image: str, tag: str) -> bool:
    """Remove `tag` from the target holding `image` (a reference a bake returned): the
    registry (which deletes the manifest by digest) or the layout (its index.json entry).
    False if the tag was gone, or for the Docker daemon, whose images `docker rmi` removes."""
    from bakery.oci.layout import LAYOUT_SCHEME

    if image.startswith(LAYOUT_SCHEME):
        from bakery.oci.layout import LayoutPublisher

        directory = image.removeprefix(LAYOUT_SCHEME).rpartition("@")[0]
        return LayoutPublisher(Path(directory)).untag(tag)
    reference = Reference.parse(image)
    if reference.digest is None:  # the daemon's `name:tag`
        return False
    from bakery.oci.remote import RegistryPublisher

    with RegistryPublisher(Reference(reference.registry, reference.repository)) as publisher:
        return publisher.untag(tag)
