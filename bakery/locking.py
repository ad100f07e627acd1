"""`bakery lock`: a request locked for its target without building anything.

The same steps a bake takes up to its lock (pin and load the base, make the spec, the
ecosystem's lock), and the lock written out: for a conda spec as a conda-lock file (baking
from it gives the image a bake of the spec gives), for a PyPI spec as the bakery's lock JSON.
"""

from dataclasses import dataclass

from bakery import config
from bakery.base.default import ensure_default_base
from bakery.base.load import load_base
from bakery.base.pin import BasePins
from bakery.base.source import parse_base
from bakery.lock import Lock
from bakery.oci.cache import BlobCache
from bakery.platforms import CONDA_SUBDIRS
from bakery.request import BakeRequest
from bakery.spec import Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter


@dataclass(frozen=True)
class Locked:
    """A request's spec, its lock, and the lock as a file's text."""

    spec: Spec
    lock: Lock
    text: str


def lock_request(
    request: BakeRequest, *, reporter: Reporter | None = None, cancel: CancelToken | None = None
) -> Locked:
    """Lock `request` (checked first) for its target platform on its base."""
    from bakery.bake import _target_python
    from bakery.ecosystems import ecosystem_for

    request.check()
    reporter = reporter or Reporter("bakery.lock")
    cancel = cancel or CancelToken()
    platform = request.target_platform
    cache = config.bake_cache_dir()
    blobs = BlobCache(cache / "blobs")
    reference = request.base_reference or ensure_default_base(blobs, platform, reporter)
    digest = BasePins(cache).pin(reference, platform=platform, ttl=config.base_tag_ttl())
    pinned = parse_base(reference).pinned(digest)
    reporter.info(f"Loading base image {pinned}")
    base = load_base(pinned, blobs, platform=platform)
    python = _target_python(request.python, base.python, pinned, request.is_conda)
    spec = request.spec(digest, python)
    ecosystem = ecosystem_for(spec)
    reporter.info(f"Locking for {platform}")
    locked = ecosystem.lock(spec, base, cancel)
    return Locked(spec, locked, lock_text(locked))


def lock_text(lock: Lock) -> str:
    """A conda lock as a conda-lock file; a PyPI lock as the bakery's lock JSON."""
    if lock.kind != "conda":
        return lock.to_json() + "\n"
    from bakery.conda.lockfile import conda_lock_text

    return conda_lock_text(lock, lock.channels, CONDA_SUBDIRS[lock.platform])
