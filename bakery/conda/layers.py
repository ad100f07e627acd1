"""Conda packages -> one cached layer each, at the image's prefix.

A package's layer holds its files as rattler installed them for the in-image prefix plus its
`conda-meta/` record, so the env in the image is one conda tools can read, and the bytecode of
its site-packages modules (as conda's installer compiles noarch python packages; the PyPI
path's compiler, `bakery.layers.bytecode`). The layer is keyed by the package's sha256, the
prefix, the env's Python (noarch python packages are laid out for it), the compiler and the
layer format: two envs that share a package and a Python share its layer.
Only packages whose layer is not cached are installed (with the env's python, which noarch
packages need to be linked), in one rattler transaction into a staging directory.
"""

import io
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from bakery.conda.install import StagedPackage, stage
from bakery.errors import room_in
from bakery.layers.bytecode import Compiler, compiled
from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.packages import BUILD_WORKERS
from bakery.layers.tarball import Compression, LayerEntry, LayerFile, LayerSymlink
from bakery.lock import CondaPackage
from stagekit.cancel import CancelToken

CONDA_LAYER_FORMAT = 3
"""Bump whenever the bytes a given package turns into change; old cache entries then miss."""
ENV_LAYER_FORMAT = 1
_REMOVALS: list[threading.Thread] = []
_REMOVALS_LOCK = threading.Lock()


def _remove_later(root: Path) -> None:
    """Remove `root` on a thread that ends when it is done (not a daemon: Python waits for
    it at exit, so nothing is left behind)."""
    thread = threading.Thread(
        target=shutil.rmtree,
        args=(root,),
        kwargs={"ignore_errors": True},
        name="bakery-conda-cleanup",
    )
    with _REMOVALS_LOCK:
        _REMOVALS[:] = [running for running in _REMOVALS if running.is_alive()]
        _REMOVALS.append(thread)
    thread.start()


def staging_removed() -> None:
    """Wait until the staging directories of finished bakes are gone (a benchmark must not
    time the next thing while they are removed)."""
    with _REMOVALS_LOCK:
        pending = list(_REMOVALS)
    for thread in pending:
        thread.join()


def conda_layer_key(
    package: CondaPackage, prefix: str, python: str | None, compiler: Compiler | None
) -> str:
    """Cache key of a conda package's layer: everything that decides its bytes."""
    bytecode = compiler and compiler.identity()
    fields = [CONDA_LAYER_FORMAT, package.sha256, prefix, python, bytecode]
    return blake3.blake3(json.dumps(fields).encode()).hexdigest()


def build_conda_layers(
    packages: Sequence[CondaPackage],
    cache: Path,
    *,
    prefix: str,
    python: str | None,
    compiler: Compiler | None,
    compression: Compression,
    on_built: Callable[[BuiltLayer], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> list[BuiltLayer]:
    """One layer per package, in `packages` order; `python` is the env's Python X.Y and
    `compiler` (None: no bytecode) a host CPython of it."""
    cancel = cancel or CancelToken()
    if python is None:
        compiler = None
    keys = {p.name: conda_layer_key(p, prefix, python, compiler) for p in packages}
    layers = {p.name: cached_layer(cache, keys[p.name], compression) for p in packages}
    missing = [p for p in packages if layers[p.name] is None]
    if missing:
        # noarch python packages are linked against the env's python: it comes along.
        interpreter = [p for p in packages if p.name == "python" and p not in missing]
        staging = cache / "conda" / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="env-", dir=staging))
        try:
            with room_in(cache, "BAKERY_CACHE_DIR"):
                staged = stage([*missing, *interpreter], root, prefix=prefix, cache=cache)
            cancel.check()

            def build(package: CondaPackage) -> BuiltLayer:
                cancel.check()
                files = _layer_files(staged[package.name], prefix)
                key, source = keys[package.name], package.filename
                if compiler is None:
                    return store_layer(cache, key, source, files, compression)
                site_packages = f"{prefix.strip('/')}/lib/python{python}/site-packages"
                with compiled(files, site_packages, compiler, source) as pycs:
                    # A package's own pycs, if it ships them, are kept.
                    return store_layer(cache, key, source, {**pycs, **files}, compression)

            # The most files first (python's, by far): it is the long pole.
            order = sorted(missing, key=lambda p: -len(staged[p.name].files))
            with ThreadPoolExecutor(BUILD_WORKERS, thread_name_prefix="bakery-conda") as pool:
                for done, layer in enumerate(pool.map(build, order), 1):
                    layers[order[done - 1].name] = layer
                    if on_built is not None:
                        on_built(layer)
                    if progress is not None:
                        progress(done, len(missing))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)  # a failed bake leaves no thread behind
            raise
        # Thousands of files (python's): removed off the bake's path, before exit.
        _remove_later(root)
    built = [layers[p.name] for p in packages]
    assert all(built), "every package's layer was cached or built"
    return built  # type: ignore[return-value]  # no None left, as asserted


def _layer_files(staged: StagedPackage, prefix: str) -> dict[str, LayerEntry]:
    """The package's staged files at `prefix`, and its conda-meta record."""
    top = prefix.strip("/")
    record = LayerFile(0o644, len(staged.record), io.BytesIO(staged.record))
    files: dict[str, LayerEntry] = {f"{top}/{staged.record_path}": record}
    for relative in staged.files:
        path = staged.root / relative
        try:
            found = os.lstat(path)  # one system call a file: python has a thousand
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(found.st_mode):
            files[f"{top}/{relative}"] = LayerSymlink(os.readlink(path))
        elif stat.S_ISREG(found.st_mode):
            mode = 0o755 if found.st_mode & 0o111 else 0o644
            files[f"{top}/{relative}"] = LayerFile(mode, found.st_size, path)
    return files


def build_conda_env_layer(cache: Path, prefix: str, compression: Compression) -> BuiltLayer:
    """The env's top layer: `conda-meta/history`, by which conda tools know an env."""
    key = blake3.blake3(json.dumps([ENV_LAYER_FORMAT, "conda", prefix]).encode()).hexdigest()
    if (layer := cached_layer(cache, key, compression)) is not None:
        return layer
    history = b""
    files: dict[str, LayerEntry] = {
        f"{prefix.strip('/')}/conda-meta/history": LayerFile(0o644, 0, io.BytesIO(history))
    }
    return store_layer(cache, key, "conda environment", files, compression)
