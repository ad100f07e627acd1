"""bake_image: spec -> lock -> layers -> image -> publish, with the publish target as the cache.

A bake first computes the spec id (inputs + base digest + platform + Python + builder) and
looks for the tag `spec-<id>` at the publish target: when it exists, nothing is resolved,
downloaded or uploaded, and nothing heavy is even imported. Otherwise `bakery.build` locks
the spec in its ecosystem, builds one cached layer per package and publishes the image with
its tag written last.
"""

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from bakery import config
from bakery.base.default import default_base_ready, ensure_default_base
from bakery.base.model import PythonInfo
from bakery.base.pin import BasePins
from bakery.base.source import parse_base
from bakery.errors import ImageBakingException
from bakery.freshness import Resolutions
from bakery.freshness import pinned as is_pinned
from bakery.image import LOCK_ANNOTATION
from bakery.oci.cache import BlobCache
from bakery.request import BakeRequest, request_from_call
from bakery.targets import open_target, target_name
from stagekit.cancel import Cancelled, CancelToken, token_from
from stagekit.progress import Reporter

if TYPE_CHECKING:
    from bakery.base.model import BaseImage
    from bakery.lock import Lock
    from bakery.oci.model import Image
    from bakery.oci.publish import Publisher
    from bakery.spec import Spec


class BakedImage(NamedTuple):
    """An immutable image reference and the interpreter to run inside it."""

    image: str
    python_path: str


@dataclass(frozen=True)
class BakeResult:
    """What a bake did: the image, and the facts a service reports about it."""

    image: str
    python_path: str
    spec_id: str
    lock_digest: str
    outcome: Literal["built", "hit", "joined"]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    bytes_uploaded: int = 0
    refreshed: bool = False
    """The spec's image was stale (`max_age`) and the spec was resolved again: outcome hit,
    the lock was unchanged and the image kept; built, the lock changed and the tag moved."""

    @property
    def baked(self) -> BakedImage:
        return BakedImage(self.image, self.python_path)


def bake_image(
    pypi: Mapping[str, str] | None = None,
    conda: Mapping[str, str] | None = None,
    requirements_file: str | Path | None = None,
    pyproject_toml: str | Path | None = None,
    base_image: str | None = None,
    python: str | None = None,
    logger: Callable[[str], Any] | None = None,
    cache_name: str | None = None,
    **options: Any,
) -> BakedImage:
    """Bake a dependency spec into a layered OCI image and return where it is.

    Options: `platform` ("linux/amd64" or "linux/arm64"), `target` ("registry", "layout" or
    "daemon"), `registry` ("host:port/repo", default BAKERY_REGISTRY), `force` (rebake even
    if the spec's image exists), `compression` ("gzip", the default, or "zstd": smaller and
    faster, but Docker 20.10 cannot pull it), `progress` (callback (stage, done, total)),
    `events` (callback receiving typed `stagekit.progress` events), `cancel` (a
    `stagekit.cancel.CancelToken`) or `timeout` (seconds): a cancelled bake raises an
    ImageBakingException of kind cancelled / deadline_exceeded and tags nothing. `max_age`
    (seconds or a `datetime.timedelta`; default BAKERY_SPEC_MAX_AGE, unset: never): a spec
    with a requirement that is not an exact `==` pin is resolved again once it was last
    resolved that long ago; an unchanged lock keeps the image, a changed one is baked and
    its tag moves (`bakery.freshness`). `service`
    ("grpc://host:port" or "grpcs://host:port", default BAKERY_URL) bakes on a Bakery server
    (`bakery.remote`): there `timeout` (or the token's deadline, default 3600 s) bounds the
    call, and the server's registry receives the image.

    Conda: `conda={"numpy": "1.26.*"}` (match specs), or the options `environment` (an
    environment.yml) or `conda_lock` (a conda-lock file, used as is), with `channels` (names
    or URLs, highest priority first; default BAKERY_CONDA_CHANNELS or conda-forge). PyPI
    requirements given too go on top of the conda env (`bakery.conda.pypi` says how).
    `cuda` ("12.2") lets the solve assume hosts with that CUDA driver (`__cuda`).
    """
    arguments = {
        "pypi": pypi,
        "conda": conda,
        "requirements_file": requirements_file,
        "pyproject_toml": pyproject_toml,
        "base_image": base_image,
        "python": python,
        "logger": logger,
        "cache_name": cache_name,
    }
    request = request_from_call(arguments, options)
    request.check()  # bad input fails here, before any base image or registry is touched
    try:
        cancel = token_from(options.get("cancel"), options.get("timeout"))
    except ValueError as exc:
        raise ImageBakingException(str(exc)) from None
    reporter = Reporter("bakery.bake", logger, options.get("progress"), options.get("events"))
    service = options.get("service") or config.service_url()
    if service is not None:
        from bakery.remote import DEFAULT_TIMEOUT, bake_remote

        timeout = cancel.remaining(DEFAULT_TIMEOUT)
        remote = bake_remote(
            request, str(service), reporter=reporter, timeout=timeout, cancel=cancel
        )
        return remote.baked
    return bake(request, reporter=reporter, cancel=cancel).baked


def bake(
    request: BakeRequest,
    *,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> BakeResult:
    """Bake a checked request. A cancelled `cancel` (or its deadline) stops the bake with
    an ImageBakingException of kind cancelled / deadline_exceeded, no tag written."""
    reporter = reporter or Reporter("bakery.bake")
    cancel = cancel or CancelToken()
    try:
        return _bake(request, reporter, cancel)
    except Cancelled as exc:
        raise ImageBakingException(
            f"The bake stopped: {exc.message}; no image was tagged.", kind=exc.kind
        ) from None


def find_fresh(
    request: BakeRequest, publisher: "Publisher", reporter: Reporter
) -> BakeResult | None:
    """The image of a checked request's spec at `publisher` (its target, kept open by the
    caller: a server reuses its registry connections) when it is baked and fresh
    (`max_age`), else None. It loads no base and builds nothing, so a server answers its
    cache hits with it without taking a build slot; a failure is an ImageBakingException,
    as a bake's."""
    lookup = _look_up(request, publisher, reporter, CancelToken(), load_base=False)
    if lookup is None or lookup.hit is None or lookup.stale is not None:
        return None
    return lookup.hit


@dataclass
class _Lookup:
    """A bake's cheap first phase: the spec on its pinned base, and its image if baked."""

    spec: "Spec"
    pinned: str
    base: "BaseImage | None"
    """Loaded only when its interpreter was not known yet; the build loads it otherwise."""
    tag: str
    resolutions: Resolutions
    blobs: BlobCache
    hit: BakeResult | None
    stale: str | None
    """Why the hit's lock must be resolved again (`max_age`); None: it is fresh."""


def _look_up(
    request: BakeRequest,
    publisher: "Publisher",
    reporter: Reporter,
    cancel: CancelToken,
    *,
    load_base: bool,
) -> _Lookup | None:
    """Pin the base, make the spec and look its tag up. None when `load_base` is False and
    the base would have to be loaded (or built) to know its Python."""
    started = time.monotonic()
    platform = request.target_platform
    cache = config.bake_cache_dir()
    blobs = BlobCache(cache / "blobs")
    base_reference = request.base_reference
    if base_reference is None:
        if not load_base and not default_base_ready(platform):
            return None
        base_reference = ensure_default_base(blobs, platform, reporter)
    pins = BasePins(cache)
    base_digest = pins.pin(base_reference, platform=platform, ttl=config.base_tag_ttl())
    pinned = parse_base(base_reference).pinned(base_digest)
    base_python = pins.python(base_digest, platform)
    base = None
    if base_python is None:
        if not load_base:
            return None
        from bakery.build import load_base_image

        base = load_base_image(pinned, blobs, platform, reporter)
        base_python = base.python
        pins.remember_python(base_digest, platform, base_python)
    python = _target_python(request.python, base_python, pinned, request.is_conda)
    spec = request.spec(base_digest, python)
    cancel.check()
    tag = f"spec-{spec.spec_id}"
    resolutions = Resolutions(cache, target_name(request.target, request.registry))
    found = None if request.force else publisher.find(tag)
    hit = stale = None
    if found is not None:
        reporter.info(f"Found baked image {found.reference} for spec {spec.spec_id[:12]}")
        hit = _hit(found.reference, found.manifest, spec, time.monotonic() - started)
        stale = resolutions.due(spec, hit.lock_digest, request.spec_max_age)
    return _Lookup(spec, pinned, base, tag, resolutions, blobs, hit, stale)


def _bake(request: BakeRequest, reporter: Reporter, cancel: CancelToken) -> BakeResult:
    uploads = Uploads(reporter)
    publisher = open_target(request.target, request.registry, uploads.on_step)
    with contextlib.closing(publisher):
        lookup = _look_up(request, publisher, reporter, cancel, load_base=True)
        assert lookup is not None  # it loads the base when it must
        spec, hit = lookup.spec, lookup.hit
        relocked: tuple[Lock, float] | None = None
        if hit is not None:
            if lookup.stale is None:
                return hit
            reporter.info(f"Resolving spec {spec.spec_id[:12]} again: {lookup.stale}")
            if lookup.base is None:
                from bakery.build import load_base_image

                lookup.base = load_base_image(
                    lookup.pinned, lookup.blobs, request.target_platform, reporter
                )
            relocked = _lock(spec, lookup.pinned, lookup.base, request.build, reporter, cancel)
            locked, seconds = relocked
            if locked.digest == hit.lock_digest:
                lookup.resolutions.record(spec.spec_id, locked.digest)
                reporter.info(f"The lock is unchanged: keeping {hit.image}")
                stages = {**hit.stage_seconds, "resolve": seconds}
                return replace(hit, refreshed=True, stage_seconds=stages)
            reporter.info("The lock changed: baking it; the spec's tag moves to the new image")
        from bakery.build import build_image

        result = build_image(
            spec,
            lookup.pinned,
            publisher,
            lookup.tag,
            base=lookup.base,
            blobs=lookup.blobs,
            uploads=uploads,
            reporter=reporter,
            cancel=cancel,
            locked=relocked[0] if relocked else None,
            build=request.build,
        )
        if not is_pinned(spec):
            lookup.resolutions.record(spec.spec_id, result.lock_digest)
        if relocked is None:
            return result
        stages = {"resolve": relocked[1], **result.stage_seconds}
        return replace(result, refreshed=True, stage_seconds=stages)


def _lock(
    spec: "Spec",
    pinned: str,
    base: "BaseImage",
    build: bool,
    reporter: Reporter,
    cancel: CancelToken,
) -> "tuple[Lock, float]":
    """The spec locked in its ecosystem (on `base`, pinned as `pinned`; sdists built when
    `build`), and the seconds that took."""
    from bakery.build import spec_ecosystem

    clock = time.monotonic()
    locked = spec_ecosystem(spec, pinned, base, reporter, build=build).lock(spec, base, cancel)
    return locked, time.monotonic() - clock


def _hit(reference: str, manifest: dict[str, Any], spec: "Spec", seconds: float) -> BakeResult:
    from bakery.lock import Lock

    lock = (manifest.get("annotations") or {}).get(LOCK_ANNOTATION)
    return BakeResult(
        image=reference,
        python_path=python_path(),
        spec_id=spec.spec_id,
        lock_digest=Lock.from_json(lock).digest if lock else "",
        outcome="hit",
        stage_seconds={"find": seconds},
    )


def python_path() -> str:
    """The interpreter every baked image runs its packages with."""
    return f"{config.ENV_PREFIX}/bin/python"


def _target_python(
    requested: str | None, base_python: PythonInfo | None, base: str, conda: bool = False
) -> str:
    if requested is not None:
        return requested
    if base_python is None and conda:  # a conda env brings its own python
        from bakery.spec import DEFAULT_PYTHON

        return DEFAULT_PYTHON
    if base_python is None:
        raise ImageBakingException(
            f"base image {base} has no Python interpreter that bakery can find; "
            "pass python='3.X' to add a managed CPython, or pick a base image with python3"
        )
    return base_python.version


class Uploads:
    """Turns a registry publisher's per-blob steps into upload progress in bytes."""

    def __init__(self, reporter: Reporter):
        self._reporter = reporter
        self._sizes: dict[str, int] = {}
        self._add: Callable[[int], None] = lambda _bytes: None

    def expect(self, image: "Image") -> None:
        self._sizes = {blob.digest: blob.size for blob in image.blobs()}
        self._add = self._reporter.meter("upload", sum(self._sizes.values()))

    def on_step(self, _step: str, digest: str) -> None:
        if digest in self._sizes:
            self._add(self._sizes[digest])
