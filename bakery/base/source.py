"""Parsing an image reference: an OCI layout directory or a registry reference."""

from dataclasses import dataclass
from pathlib import Path

from bakery.errors import quoted
from bakery.oci.errors import LayoutError
from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.reference import DIGEST, Reference


@dataclass(frozen=True)
class BaseSource:
    """Where an image lives: `layout` (a directory) or `registry`, plus tag and/or digest.

    A layout reference with neither names the layout's only image."""

    layout: Path | None
    registry: Reference | None
    tag: str | None
    digest: str | None

    def pinned(self, digest: str) -> str:
        """This source's reference, pinned to `digest`."""
        if self.layout is not None:
            return f"{LAYOUT_SCHEME}{self.layout}@{digest}"
        assert self.registry is not None  # a source is a layout or a registry reference
        return str(self.registry.with_digest(digest))


def parse_base(reference: str) -> BaseSource:
    """`oci-layout://DIR[:tag|@sha256:...]` or any registry reference `docker pull` takes."""
    if reference.startswith(LAYOUT_SCHEME):
        return _parse_layout(reference.removeprefix(LAYOUT_SCHEME))
    parsed = Reference.parse(reference)
    return BaseSource(
        None, parsed, parsed.tag or (None if parsed.digest else "latest"), parsed.digest
    )


def _parse_layout(location: str) -> BaseSource:
    """`DIR`, `DIR@sha256:...` or `DIR:tag`; a directory whose name has a ':' stays whole."""
    if "@" in location:
        directory, digest = location.rsplit("@", 1)
        if not DIGEST.fullmatch(digest):
            raise LayoutError(
                f"invalid digest {quoted(digest)} in {quoted(LAYOUT_SCHEME + location)}"
            )
        return BaseSource(Path(directory), None, None, digest)
    directory, colon, tag = location.rpartition(":")
    if colon and "/" not in tag and not Path(location).is_dir():
        return BaseSource(Path(directory), None, tag, None)
    return BaseSource(Path(location), None, None, None)
