"""Locked wheels -> package layers, overlapped: a layer is built as soon as its wheel lands.

Downloads run on their own threads; each finished wheel goes straight to a builder thread,
one per core (inflating the wheel, hashing and compressing release the GIL: two cores build
~1.5x faster than one). `on_built` sees every layer the moment it is done, so a publisher
can start pushing it while the others are still being built.
"""

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from bakery.artifacts import Progress, fetch_artifacts
from bakery.layers.bytecode import Compiler
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import Compression
from bakery.layers.wheel import build_wheel_layer
from bakery.lock import LockedPackage
from stagekit.cancel import CancelToken

BUILD_WORKERS = min(os.cpu_count() or 1, 8)
"""Builders hold a wheel's small files in memory: more than 8 costs memory, gains little."""


def build_package_layers(
    packages: Sequence[LockedPackage],
    cache: Path,
    *,
    python: str,
    compiler: Compiler | None,
    prefix: str,
    compression: Compression,
    on_built: Callable[[BuiltLayer], None] | None = None,
    download_progress: Progress | None = None,
    layer_progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> list[BuiltLayer]:
    """One layer per package for target Python `python`, with the bytecode `compiler` writes
    (None: no bytecode), in `packages` order; progress and `on_built` run on this thread.
    A cancelled `cancel` stops downloads at their next chunk and builds before their next
    layer; layers already built stay cached (each is complete: written, then renamed)."""
    cancel = cancel or CancelToken()
    builds: list[Future[BuiltLayer] | None] = [None] * len(packages)
    with ThreadPoolExecutor(BUILD_WORKERS, thread_name_prefix="bakery-layer") as builders:

        def checked_build(wheel: Path, **arguments: Any) -> BuiltLayer:
            cancel.check()
            return build_wheel_layer(wheel, **arguments)

        def build(index: int, wheel: Path) -> None:
            package = packages[index]
            cancel.check()
            builds[index] = builders.submit(
                checked_build,
                wheel,
                filename=package.filename,
                sha256=package.sha256,
                python=python,
                cache=cache,
                compiler=compiler,
                prefix=prefix,
                compression=compression,
            )

        try:
            # Largest first: the biggest wheel is the long pole, for downloads and builds.
            order = sorted(range(len(packages)), key=lambda i: -(packages[i].size or 0))
            fetch_artifacts(
                [packages[i] for i in order],
                cache,
                progress=download_progress,
                on_ready=lambda position, wheel: build(order[position], wheel),
                cancel=cancel,
            )
            futures = [future for future in builds if future is not None]
            for done, future in enumerate(as_completed(futures), 1):
                cancel.check()
                if on_built is not None:
                    on_built(future.result())
                if layer_progress is not None:
                    layer_progress(done, len(packages))
        except BaseException:
            builders.shutdown(cancel_futures=True)
            raise
    return [future.result() for future in builds if future is not None]
