"""Reading a baked image back: its manifest and the lock stored in its annotations."""

from typing import Any

from bakery.base.load import layout_digest
from bakery.base.source import parse_base
from bakery.errors import ImageBakingException
from bakery.image import LOCK_ANNOTATION
from bakery.lock import Lock
from bakery.oci.layout import LayoutPublisher
from bakery.oci.registry import RegistryClient


def read_manifest(reference: str) -> dict[str, Any]:
    """The manifest an image reference (registry or `oci-layout://`) points at."""
    source = parse_base(reference)
    if source.layout is not None:
        digest = source.digest or layout_digest(source.layout, source.tag)
        return LayoutPublisher(source.layout).manifest(digest)
    assert source.registry is not None
    with RegistryClient(source.registry) as client:
        return client.get_manifest(source.registry.identifier).json


def read_lock(reference: str) -> Lock:
    """The lock a baked image carries: every package with its version, URL and sha256."""
    annotations = read_manifest(reference).get("annotations", {})
    if LOCK_ANNOTATION not in annotations:
        raise ImageBakingException(
            f"{reference} carries no bakery lock annotation; was it baked by bakery?"
        )
    return Lock.from_json(annotations[LOCK_ANNOTATION])
