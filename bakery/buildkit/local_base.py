"""A base from an OCI layout (the embedded default base) made visible to the engine's
BuildKit: loaded into the Docker Engine once, as `bakery.local/buildkit-base:<digest>`,
which the engine's BuildKit resolves from its own image store without a registry."""

from pathlib import Path

from bakery.oci.model import OCI_CONFIG, Image, canonical_json
from stagekit.progress import Reporter

REPOSITORY = "bakery.local/buildkit-base"


def load_into_engine(layout_base: str, cache: Path, platform: str, reporter: Reporter) -> str:
    """The engine name of `layout_base` (a pinned `oci-layout://DIR@sha256:...`), loaded
    into the engine first unless an earlier bake did."""
    from bakery.base.load import load_base
    from bakery.oci.cache import BlobCache
    from bakery.oci.daemon import DaemonPublisher

    blobs = BlobCache(cache / "blobs")
    base = load_base(layout_base, blobs, platform=platform)
    tag = base.digest.removeprefix("sha256:")
    publisher = DaemonPublisher(REPOSITORY)
    try:
        if publisher.find(tag) is None:
            reporter.info(f"Loading the base {layout_base} into the Docker Engine for BuildKit")
            config = blobs.blob(blobs.put_bytes(canonical_json(base.config)), OCI_CONFIG)
            publisher.publish(Image(config=config, layers=base.layers), tag)
    finally:
        publisher.close()
    return f"{REPOSITORY}:{tag}"
