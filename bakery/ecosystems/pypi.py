"""PyPI: requirements locked by uv for the target, one layer per wheel, a venv on top.

Nothing runs on the fast path: wheels are unpacked, not installed by running code. If the
spec's Python differs from the base's, a managed CPython layer comes first.
"""

from collections.abc import Callable
from pathlib import Path

from bakery import config
from bakery.base.model import BaseImage
from bakery.buildkit.builder import ExecutionBuilder
from bakery.errors import ImageBakingException
from bakery.layers.budget import LAYER_BUDGET, fit_budget
from bakery.layers.bytecode import Compiler, NoCompiler, find_compiler
from bakery.layers.cpython import build_cpython_layer
from bakery.layers.env import build_env_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.packages import build_package_layers
from bakery.lock import Lock, lock
from bakery.spec import Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter

LOCK_TIMEOUT = 600.0
"""Longest uv may take to resolve, when the bake has no nearer deadline."""


class PyPI:
    """`builder`: the execution builder for sdist-only packages; None: wheels only."""

    kind = "pypi"
    prefix_variable = "VIRTUAL_ENV"

    def __init__(self, builder: ExecutionBuilder | None = None) -> None:
        self.builder = builder

    def lock(self, spec: Spec, base: BaseImage, cancel: CancelToken) -> Lock:
        cancel.check()
        if self.builder is not None:
            return self.builder.lock(spec, cancel, timeout=cancel.remaining(LOCK_TIMEOUT))
        return lock(spec, timeout=cancel.remaining(LOCK_TIMEOUT))

    def image_spec_id(self, spec: Spec, locked: Lock) -> str:
        return spec.spec_id

    def layers(
        self,
        spec: Spec,
        locked: Lock,
        base: BaseImage,
        *,
        cache: Path,
        reporter: Reporter,
        on_built: Callable[[BuiltLayer], None] | None,
        room: int,
        cancel: CancelToken,
    ) -> list[BuiltLayer]:
        system: list[BuiltLayer] = []
        if spec.system_packages:  # apt's files go right on the base, under everything else
            if self.builder is None:
                raise ImageBakingException("system_packages need the execution builder (BuildKit).")
            system.append(self.builder.system_layer(spec, cancel))
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
        cancel.check()

        room -= len(system) + len(interpreter_layers) + 1  # the env layer goes on top
        wheels = list(locked.packages)
        if self.builder is not None:  # each sdist's wheel, built in BuildKit (or cached)
            wheels = self.builder.layered(spec, wheels, cancel)
        total = sum(package.size or 0 for package in wheels)
        compiler = bytecode_compiler(spec.python, cache, reporter)
        reporter.info(f"Downloading {len(wheels)} wheel(s)")
        built = build_package_layers(
            wheels,
            cache,
            python=spec.python,
            compiler=compiler,
            prefix=config.ENV_PREFIX,
            compression=spec.compression,
            # Over the budget, some layers get merged: pushing them early would be wasted.
            on_built=on_built if len(wheels) <= room else None,
            download_progress=lambda done, count: reporter.advance(
                "download", done, total or count
            ),
            layer_progress=lambda done, count: reporter.advance("layers", done, count),
            cancel=cancel,
        )
        packages, merged = fit_budget(built, room, cache, spec.compression)
        if merged:
            reporter.info(
                f"Merged the {len(merged)} smallest package layers to stay under "
                f"{LAYER_BUDGET} layers"
            )
        built_now = sum(not layer.reused for layer in built)
        reporter.info(
            f"Layers: {len(built)} packages ({built_now} built, {len(built) - built_now} cached)"
        )
        cancel.check()
        env = build_env_layer(cache, config.ENV_PREFIX, python, spec.compression)
        return [*system, *interpreter_layers, *packages, env]


def bytecode_compiler(python: str, cache: Path, reporter: Reporter) -> Compiler | None:
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
