"""Pinning a base image reference to a manifest digest, cheaply.

The spec id contains the base *digest*, so a bake must know it before it can look for an
existing image. A digest reference is its own pin; a tag is resolved once and then trusted
for `ttl` seconds (BAKERY_BASE_TTL), so a cache hit costs no registry round trip while a
moving tag such as `python:3.12-slim` is still picked up again later.
"""

import json
import time
from pathlib import Path

from bakery.base.model import PythonInfo
from bakery.base.source import parse_base
from bakery.errors import room_in
from bakery.oci.read import open_image
from stagekit.files import write_atomic


class BasePins:
    """Tag -> digest pins and digest -> interpreter facts, kept under `<cache>/bases/`."""

    def __init__(self, cache: Path):
        self.directory = cache / "bases"

    def pin(self, reference: str, *, platform: str, ttl: float) -> str:
        """The manifest digest `reference` names for `platform` now (or within `ttl`)."""
        source = parse_base(reference)
        if source.digest:
            return source.digest
        pins_file = self.directory / "pins.json"
        pins = _read_json(pins_file)
        key = f"{platform} {reference}"
        pinned = pins.get(key)
        if pinned and time.time() - pinned["at"] < ttl:
            return pinned["digest"]
        with open_image(reference) as image:
            digest = image.manifest(platform).digest
        pins[key] = {"digest": digest, "at": time.time()}
        _write_json(pins_file, pins)
        return digest

    def python(self, digest: str, platform: str) -> PythonInfo | None:
        """The interpreter recorded for a base digest, if it was loaded before."""
        known = _read_json(self._facts(digest, platform)).get("python")
        return PythonInfo(**known) if known else None

    def remember_python(self, digest: str, platform: str, python: PythonInfo | None) -> None:
        facts = {"python": python.__dict__ if python else None}
        _write_json(self._facts(digest, platform), facts)

    def _facts(self, digest: str, platform: str) -> Path:
        return (
            self.directory / f"{digest.removeprefix('sha256:')}.{platform.replace('/', '-')}.json"
        )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_json(path: Path, value: dict) -> None:
    with room_in(path.parent, "BAKERY_CACHE_DIR"):
        write_atomic(path, json.dumps(value, sort_keys=True).encode())
