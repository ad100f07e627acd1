"""Parsing an image reference: an OCI layout directory or a registry reference."""

from dataclasses import dataclass
from pathlib import Path

from bakery.oci.layout import LAYOUT_SCHEME
from bakery.oci.read import parse_layout
from bakery.oci.reference import Reference


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
        directory, tag, digest = parse_layout(reference)
        return BaseSource(directory, None, tag, digest)
    parsed = Reference.parse(reference)
    return BaseSource(
        None, parsed, parsed.tag or (None if parsed.digest else "latest"), parsed.digest
    )
