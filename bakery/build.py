"""Building an image nobody baked yet: base -> lock -> layers -> image -> publish.

Imported by `bakery.bake` only after the tag lookup missed, so a cache hit never loads the
resolver, the layer builders or the HTTP client. The part that knows a package manager is
the spec's ecosystem (`bakery.ecosystems`); base loading, the layer budget, assembly and
publishing are the same for every ecosystem.
"""

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bakery import config
from bakery.bake import BakeResult, Uploads, python_path
from bakery.base.load import fetch_base_layers, load_base
from bakery.base.model import BaseImage
from bakery.buildkit.builder import execution_builder
from bakery.ecosystems import Ecosystem, ecosystem_for
from bakery.image import assemble
from bakery.layers.budget import LAYER_BUDGET
from bakery.layers.model import BuiltLayer
from bakery.lock import Lock
from bakery.oci.cache import BlobCache
from bakery.oci.model import Image
from bakery.oci.publish import Publisher
from bakery.oci.remote import RegistryPublisher
from bakery.spec import Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter


def load_base_image(
    reference: str, blobs: BlobCache, platform: str, reporter: Reporter
) -> BaseImage:
    """The pinned base's manifest and config in the blob cache. Its layers' bytes come
    later, if at all: `build_image` copies them in while it resolves and builds (none when
    the publisher mounts them from the registry that holds them)."""
    reporter.info(f"Loading base image {reference}")
    return load_base(reference, blobs, platform=platform, fetch_layers=False)


@contextlib.contextmanager
def _prefetched(base: BaseImage, blobs: BlobCache, wanted: bool) -> Iterator[None]:
    """With `wanted`, the base's layers are copied into `blobs` on a thread of their own
    while the body runs (whoever needs them first waits for that copy, in
    `fetch_base_layers`); a failure there is left to the caller that needs them."""
    if not wanted:
        yield
        return
    # Waited for on every exit, so a bake leaves no thread behind (a failed one waits for
    # the copy, as it waited for the base's load before).
    with ThreadPoolExecutor(1, thread_name_prefix="bakery-base") as fetcher:
        fetcher.submit(fetch_base_layers, base, blobs)
        yield


def build_image(
    spec: Spec,
    base_reference: str,
    publisher: Publisher,
    tag: str,
    *,
    base: BaseImage | None,
    blobs: BlobCache,
    uploads: Uploads,
    reporter: Reporter,
    cancel: CancelToken,
    locked: Lock | None = None,
    build: bool = True,
) -> BakeResult:
    """Lock (unless the caller has `locked` it already), layer, assemble and publish `spec`
    on the pinned base (`base`, if the caller loaded it already); the tag goes last.
    `build`: sdist-only packages are built in BuildKit (else they are an error)."""
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now
        cancel.check()

    base = base or load_base_image(base_reference, blobs, spec.platform, reporter)
    mount_repository = _mount_repository(publisher, base_reference)
    lap("base")
    # A registry push fetches the base's layers itself, when it does not mount them.
    local = not isinstance(publisher, RegistryPublisher)
    with _prefetched(base, blobs, wanted=local):
        on_built: Callable[[BuiltLayer], None] | None = None
        if isinstance(publisher, RegistryPublisher):
            # The base's layers travel while the spec is resolved, each package layer as soon as
            # it is built; `publish` waits for them all before the manifest and tag.
            pusher = publisher
            pusher.push_ahead(base.layers, **_base_push(base, mount_repository, blobs))
            on_built = lambda layer: pusher.push_ahead([layer.oci_layer()])  # noqa: E731
        ecosystem = spec_ecosystem(spec, base_reference, base, reporter, build=build)
        if locked is None:
            reporter.info(
                f"Resolving {len(spec.requirements)} requirement(s) for {spec.platform}, "
                f"Python {spec.python}"
            )
            locked = ecosystem.lock(spec, base, cancel)
            lap("resolve")
        layers = ecosystem.layers(
            spec,
            locked,
            base,
            cache=config.bake_cache_dir(),
            reporter=reporter,
            on_built=on_built,
            room=LAYER_BUDGET - len(base.layers),
            cancel=cancel,
        )
        lap("layers")
        image = assemble(
            base,
            layers,
            prefix=config.ENV_PREFIX,
            prefix_variable=ecosystem.prefix_variable,
            spec_id=ecosystem.image_spec_id(spec, locked),
            lock=locked,
            blobs=blobs,
            source_date_epoch=spec.source_date_epoch,
        )
        reference, uploaded = _publish(
            publisher, image, tag, base, mount_repository, blobs, uploads, reporter, cancel
        )
        lap("publish")
        reporter.info(f"Baked {reference}")
        return BakeResult(
            image=reference,
            python_path=python_path(),
            spec_id=spec.spec_id,
            lock_digest=locked.digest,
            outcome="built",
            stage_seconds=seconds,
            bytes_uploaded=uploaded,
        )


def spec_ecosystem(
    spec: Spec, base_reference: str, base: BaseImage, reporter: Reporter, *, build: bool
) -> Ecosystem:
    """The spec's ecosystem, with the execution builder it may need (sdists, system
    packages) on the base at `base_reference`; `build=False` lets no sdist be built."""
    python = base.python.version if base.python else None
    return ecosystem_for(spec, execution_builder(base_reference, python, reporter, allowed=build))


def _mount_repository(publisher: Publisher, base_reference: str) -> str | None:
    """The base's repository when publishing to the registry that holds it: the push mounts
    its layers there, so their bytes are never needed locally."""
    from bakery.base.source import parse_base

    base = parse_base(base_reference)
    if base.registry is not None and base.registry.registry == publisher.registry:
        return base.registry.repository
    return None


def _base_push(base: BaseImage, mount_repository: str | None, blobs: BlobCache) -> dict[str, Any]:
    """How a registry push gets the base's layers: mounted from `mount_repository` when
    there is one, else uploaded, fetched from the base's registry first if not local."""
    mount_from = None
    if mount_repository is not None:
        mount_from = dict.fromkeys((layer.digest for layer in base.layers), mount_repository)
    return {"mount_from": mount_from, "fetch": lambda _blob: fetch_base_layers(base, blobs)}


def _publish(
    publisher: Publisher,
    image: Image,
    tag: str,
    base: BaseImage,
    mount_repository: str | None,
    blobs: BlobCache,
    uploads: Uploads,
    reporter: Reporter,
    cancel: CancelToken,
) -> tuple[str, int]:
    """Publish (base layers mounted from `mount_repository` when there is one); returns the
    reference and the bytes uploaded. The last check for cancellation is before the tag."""
    reporter.info(f"Publishing {len(image.layers)} layers as {tag}")
    if not isinstance(publisher, RegistryPublisher):
        fetch_base_layers(base, blobs)
        cancel.check()
        return publisher.publish(image, tag), 0
    uploads.expect(image)
    result = publisher.publish(
        image, tag, before_tag=cancel.check, **_base_push(base, mount_repository, blobs)
    )
    stats = publisher.stats
    reporter.info(
        f"Uploaded {stats.uploaded} blob(s) ({stats.uploaded_bytes / 1e6:.1f} MB), "
        f"mounted {stats.mounted}, already present {stats.skipped}"
    )
    return result, stats.uploaded_bytes
