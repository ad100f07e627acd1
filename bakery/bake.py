"""bake_image: spec -> lock -> layers -> image -> publish, with the registry as the cache.

A bake first computes the spec id (inputs + base digest + platform + Python + builder) and
looks for the tag `spec-<id>` at the publish target: when it exists, nothing is resolved,
downloaded or uploaded. Otherwise the spec is locked with uv for the target platform, each
wheel becomes its own cached layer, and the image is published with its tag written last.
"""

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from bakery import config
from bakery.base.default import ensure_default_base
from bakery.base.load import fetch_base_layers, load_base
from bakery.base.model import BaseImage, PythonInfo
from bakery.base.pin import BasePins
from bakery.base.source import BaseSource, parse_base
from bakery.errors import ImageBakingException, quoted, shorten
from bakery.image import assemble
from bakery.layers.budget import LAYER_BUDGET, fit_budget
from bakery.layers.bytecode import Compiler, NoCompiler, find_compiler
from bakery.layers.cpython import build_cpython_layer
from bakery.layers.env import build_env_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.packages import build_package_layers
from bakery.lock import Lock, lock
from bakery.oci.cache import BlobCache
from bakery.oci.model import Image
from bakery.oci.publish import Publisher
from bakery.oci.remote import RegistryPublisher
from bakery.spec import DEFAULT_PYTHON, Spec, make_spec, one_line
from bakery.targets import open_target
from stagekit.progress import Reporter

_OPTIONS = {"platform", "registry", "target", "force", "progress", "compression"}
_UNPINNED = "sha256:" + "0" * 64


class BakedImage(NamedTuple):
    """An immutable image reference and the interpreter to run inside it."""

    image: str
    python_path: str


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
    faster, but Docker 20.10 cannot pull it), `progress` (callback (stage, done, total)).
    """
    inputs = _validated_inputs(conda, options, python=python, base_image=base_image, logger=logger)
    inputs |= {
        "pypi": pypi,
        "requirements_file": requirements_file,
        "pyproject_toml": pyproject_toml,
        "cache_name": cache_name,
        "source_date_epoch": config.source_date_epoch(),
    }
    # Bad input fails here, before any base image or registry is touched.
    make_spec(**inputs, base_image_digest=_UNPINNED, python=python or DEFAULT_PYTHON)
    reporter = Reporter("bakery.bake", logger, options.get("progress"))
    uploads = _UploadMeter(reporter)
    publisher = open_target(options.get("target"), options.get("registry"), uploads.on_step)
    with contextlib.closing(publisher):
        return _bake(
            publisher,
            inputs,
            base_image=base_image,
            python=python,
            force=bool(options.get("force")),
            reporter=reporter,
            uploads=uploads,
        )


def _validated_inputs(
    conda: object, options: dict[str, Any], *, python: object, base_image: object, logger: object
) -> dict[str, Any]:
    """The target inputs for `make_spec`, after checking every option's type and form.

    None means "the default"; any other value must be valid (an empty string is not a
    way to ask for the default)."""
    if conda is not None:
        raise ImageBakingException(
            "conda specs are not supported yet; use pypi=, requirements_file= or pyproject_toml="
        )
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ImageBakingException(
            f"unknown option(s) {shorten(str(sorted(map(str, unknown))))}; known options: "
            f"{sorted(_OPTIONS)}"
        )
    for name in ("platform", "registry", "target", "compression"):
        _optional_text(options.get(name), name)
    _optional_text(python, "python")
    _optional_text(base_image, "base_image")
    if not isinstance(options.get("force", False), bool):
        raise ImageBakingException(f"force must be True or False, not {quoted(options['force'])}.")
    for name, callback in (("logger", logger), ("progress", options.get("progress"))):
        if callback is not None and not callable(callback):
            raise ImageBakingException(
                f"{name} must be a callable or None, not {quoted(callback)}."
            )
    base = base_image if base_image is not None else config.base_image()
    if base is not None:
        parse_base(base)  # a malformed reference is refused now, not after the spec is built
    platform = options.get("platform")
    compression = options.get("compression")
    return {
        "platform": config.platform() if platform is None else platform,
        "compression": "gzip" if compression is None else compression,
    }


def _optional_text(value: object, name: str) -> None:
    """None, or a non-empty printable string: the type check `make_spec` cannot do for
    options it never sees, and for those where a falsy value would silently mean the
    default."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ImageBakingException(f"{name} must be a string or None, not {quoted(value)}.")
    if not value.strip():
        raise ImageBakingException(
            f"{name} is empty ({quoted(value)}); leave it out (None) for the default."
        )
    one_line(value, f"{name} {quoted(value)}")


def _bake(
    publisher: Publisher,
    inputs: dict[str, Any],
    *,
    base_image: str | None,
    python: str | None,
    force: bool,
    reporter: Reporter,
    uploads: "_UploadMeter",
) -> BakedImage:
    """The bake proper, once the inputs are known to be valid and the target is open."""
    platform = inputs["platform"]
    cache = config.bake_cache_dir()
    blobs = BlobCache(cache / "blobs")
    base_reference = base_image if base_image is not None else config.base_image()
    if base_reference is None:
        base_reference = ensure_default_base(blobs, platform, reporter)
    pins = BasePins(cache)
    base_digest = pins.pin(base_reference, platform=platform, ttl=config.base_tag_ttl())
    base_source = parse_base(base_reference)
    pinned_reference = base_source.pinned(base_digest)
    mount_repository = _mount_repository(publisher, base_source)
    fetch_layers = mount_repository is None
    base: BaseImage | None = None
    base_python = pins.python(base_digest, platform)
    if base_python is None:
        base = _load(pinned_reference, blobs, platform, reporter, fetch_layers=fetch_layers)
        base_python = base.python
        pins.remember_python(base_digest, platform, base_python)

    spec = make_spec(
        **inputs,
        base_image_digest=base_digest,
        python=_target_python(python, base_python, pinned_reference),
    )
    tag = f"spec-{spec.spec_id}"
    python_path = f"{config.ENV_PREFIX}/bin/python"
    if not force and (found := publisher.find(tag)) is not None:
        reporter.info(f"Found baked image {found.reference} for spec {spec.spec_id[:12]}")
        return BakedImage(found.reference, python_path)

    base = base or _load(pinned_reference, blobs, platform, reporter, fetch_layers=fetch_layers)
    on_built = None
    if isinstance(publisher, RegistryPublisher):
        # The base's layers travel while the spec is resolved, each package layer as soon as
        # it is built; `publish` waits for them all before the manifest and tag.
        publisher.push_ahead(base.layers, **_base_push(base, mount_repository, blobs))
        on_built = lambda layer: publisher.push_ahead([layer.oci_layer()])  # noqa: E731
    reporter.info(
        f"Resolving {len(spec.requirements)} requirement(s) for {platform}, Python {spec.python}"
    )
    locked = lock(spec)
    layers = _build_layers(spec, locked, base, cache, reporter, on_built)
    image = assemble(
        base,
        layers,
        prefix=config.ENV_PREFIX,
        spec_id=spec.spec_id,
        lock=locked,
        blobs=blobs,
        source_date_epoch=spec.source_date_epoch,
    )
    reference = _publish(publisher, image, tag, base, mount_repository, blobs, uploads, reporter)
    reporter.info(f"Baked {reference}")
    return BakedImage(reference, python_path)


def _mount_repository(publisher: Publisher, base: BaseSource) -> str | None:
    """The base's repository when publishing to the registry that holds it: the push mounts
    its layers there, so their bytes are never needed locally."""
    if (
        isinstance(publisher, RegistryPublisher)
        and base.registry is not None
        and base.registry.registry == publisher.ref.registry
    ):
        return base.registry.repository
    return None


def _target_python(requested: str | None, base_python: PythonInfo | None, base: str) -> str:
    if requested is not None:
        return requested
    if base_python is None:
        raise ImageBakingException(
            f"base image {base} has no Python interpreter that bakery can find; "
            "pass python='3.X' to add a managed CPython, or pick a base image with python3"
        )
    return base_python.version


def _load(
    reference: str, blobs: BlobCache, platform: str, reporter: Reporter, *, fetch_layers: bool
) -> BaseImage:
    reporter.info(f"Loading base image {reference}")
    return load_base(reference, blobs, platform=platform, fetch_layers=fetch_layers)


def _build_layers(
    spec: Spec,
    locked: Lock,
    base: BaseImage,
    cache: Path,
    reporter: Reporter,
    on_built: Callable[[BuiltLayer], None] | None,
) -> list[BuiltLayer]:
    """Package layers (within the layer budget), then the environment layer on top;
    `on_built` sees each package layer as soon as it is done."""
    interpreter_layers: list[BuiltLayer] = []
    python = base.python
    if python is None or python.version != spec.python:
        reporter.info(
            f"Adding a managed CPython {spec.python} (the base has {python and python.version})"
        )
        cpython_layer, python = build_cpython_layer(
            spec.python, spec.platform, cache, spec.compression
        )
        interpreter_layers.append(cpython_layer)

    room = LAYER_BUDGET - len(base.layers) - len(interpreter_layers) - 1
    total = sum(package.size or 0 for package in locked.packages)
    compiler = _bytecode_compiler(spec.python, cache, reporter)
    reporter.info(f"Downloading {len(locked.packages)} wheel(s)")
    built = build_package_layers(
        locked.packages,
        cache,
        python=spec.python,
        compiler=compiler,
        prefix=config.ENV_PREFIX,
        compression=spec.compression,
        # Over the budget, some layers get merged: pushing them early would be wasted.
        on_built=on_built if len(locked.packages) <= room else None,
        download_progress=lambda done, _total: reporter.advance("download", done, total or _total),
        layer_progress=lambda done, count: reporter.advance("layers", done, count),
    )
    packages, merged = fit_budget(built, room, cache, spec.compression)
    if merged:
        reporter.info(
            f"Merged the {len(merged)} smallest package layers to stay under {LAYER_BUDGET} layers"
        )
    built_now = sum(not layer.reused for layer in built)
    reporter.info(
        f"Layers: {len(built)} packages ({built_now} built, {len(built) - built_now} cached)"
    )
    env = build_env_layer(cache, config.ENV_PREFIX, python, spec.compression)
    return [*interpreter_layers, *packages, env]


def _bytecode_compiler(python: str, cache: Path, reporter: Reporter) -> Compiler | None:
    """The host CPython that compiles the layers' bytecode, or None (logged) when there is
    none: the image then works, but compiles its imports at every container start."""
    try:
        return find_compiler(python, cache)
    except NoCompiler as exc:
        reporter.warn(
            f"Package layers will have no bytecode (.pyc): {exc}. Containers will compile "
            f"imports at start. Install CPython {python} on this host (uv python install "
            f"{python}) and bake with force=True to add it."
        )
        return None


class _UploadMeter:
    """Turns a registry publisher's per-blob steps into upload progress in bytes."""

    def __init__(self, reporter: Reporter):
        self._reporter = reporter
        self._sizes: dict[str, int] = {}
        self._add: Callable[[int], None] = lambda _bytes: None

    def expect(self, image: Image) -> None:
        self._sizes = {blob.digest: blob.size for blob in image.blobs()}
        self._add = self._reporter.meter("upload", sum(self._sizes.values()))

    def on_step(self, _step: str, digest: str) -> None:
        if digest in self._sizes:
            self._add(self._sizes[digest])


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
    uploads: _UploadMeter,
    reporter: Reporter,
) -> str:
    """Publish; base layers are mounted from `mount_repository` when there is one."""
    reporter.info(f"Publishing {len(image.layers)} layers as {tag}")
    if not isinstance(publisher, RegistryPublisher):
        fetch_base_layers(base, blobs)
        return publisher.publish(image, tag)
    uploads.expect(image)
    result = publisher.publish(image, tag, **_base_push(base, mount_repository, blobs))
    stats = publisher.stats
    reporter.info(
        f"Uploaded {stats.uploaded} blob(s) ({stats.uploaded_bytes / 1e6:.1f} MB), "
        f"mounted {stats.mounted}, already present {stats.skipped}"
    )
    return result
