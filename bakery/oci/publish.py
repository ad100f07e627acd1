"""The one interface every publish target implements (registry, layout directory, daemon).

The bakery finds an already-baked image again by its tag (`spec-<id>`) through `find`, so
the publish target doubles as the bakery's database.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from bakery.oci.model import Image


class Found(NamedTuple):
    """An image a publisher already holds: its runnable reference and its manifest."""

    reference: str
    manifest: dict[str, Any]


class Publisher(Protocol):
    @property
    def registry(self) -> str | None:
        """The registry host this target writes to; None for a layout or the engine."""
        ...

    def publish(self, image: Image, tag: str) -> str:
        """Store the image, then point `tag` at it; returns an immutable reference to it."""
        ...

    def find(self, tag: str) -> Found | None:
        """The image `tag` points at, or None if there is none."""
        ...

    def resolve(self, tag: str) -> str:
        """The manifest digest `tag` points at; raises an OciError if there is none."""
        ...

    def close(self) -> None:
        """Release connections and wait for pushes still running in the background."""
        ...
