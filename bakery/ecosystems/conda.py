"""Conda: match specs solved by rattler for the target (or a conda-lock file used as is),
one layer per conda package at the image's prefix, PyPI wheels on top.

The env is the image's prefix itself (`config.ENV_PREFIX`): its `bin/python` is the conda
python, so `python_path` is the same as for PyPI images, and PyPI wheels go into the env's
site-packages. The image sets CONDA_PREFIX (not VIRTUAL_ENV) and PATH.
"""

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from bakery import config
from bakery.base.model import BaseImage
from bakery.errors import ImageBakingException
from bakery.layers.budget import LAYER_BUDGET, fit_budget
from bakery.layers.model import BuiltLayer
from bakery.lock import CondaPackage, Lock
from bakery.spec import Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter

if TYPE_CHECKING:
    from bakery.layers.bytecode import Compiler

SOLVE_TIMEOUT = 600.0
"""Longest a solve (and the PyPI part's resolution) may take without a nearer deadline."""


def env_python(packages: tuple[CondaPackage, ...]) -> str | None:
    """The X.Y of the env's `python` package, if it has one."""
    for package in packages:
        if package.name == "python":
            return ".".join(package.version.split(".")[:2])
    return None


def locked_spec(spec: Spec, locked: Lock) -> Spec:
    """The spec a bake of this lock's conda-lock file makes: its id labels the image, so the
    image baked from match specs and the one baked from its lockfile are the same image."""
    from bakery.conda.lockfile import locked_json

    return dataclasses.replace(spec, conda=(), conda_locked=locked_json(locked.conda))


class Conda:
    kind = "conda"
    prefix_variable = "CONDA_PREFIX"

    def lock(self, spec: Spec, base: BaseImage, cancel: CancelToken) -> Lock:
        from bakery.conda.lockfile import packages_of

        cancel.check()
        cache = config.bake_cache_dir()
        if spec.conda_locked is not None:
            conda = packages_of(spec.conda_locked)
        else:
            from bakery.conda.solve import solve
            from bakery.conda.virtual import virtual_packages

            # The base's glibc is read while the channels' repodata is fetched.
            with ThreadPoolExecutor(1, thread_name_prefix="bakery-glibc") as reader:
                virtual = reader.submit(virtual_packages, base, spec.platform, cache, spec.cuda)
                conda = solve(
                    spec.conda,
                    spec.channels,
                    spec.platform,
                    virtual.result,
                    cache,
                    timeout=cancel.remaining(SOLVE_TIMEOUT),
                )
        python = env_python(conda)
        wheels: tuple = ()
        if spec.requirements:
            if python is None:
                raise ImageBakingException(
                    "The conda env has no python, so PyPI requirements cannot go on top of "
                    "it: add python to the conda specs."
                )
            from bakery.conda.pypi import lock_on_conda

            cancel.check()
            wheels = lock_on_conda(spec, python, conda, cancel.remaining(SOLVE_TIMEOUT))
        return Lock(
            platform=spec.platform,
            python=python or spec.python,
            packages=wheels,
            kind=self.kind,
            conda=conda,
            channels=spec.channels,
        )

    def image_spec_id(self, spec: Spec, locked: Lock) -> str:
        return locked_spec(spec, locked).spec_id

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
        from bakery.conda.layers import build_conda_env_layer, build_conda_layers
        from bakery.ecosystems.pypi import bytecode_compiler

        room -= 1  # the env layer goes on top
        count = len(locked.conda) + len(locked.packages)
        early = on_built if count <= room else None  # merged layers are not pushed early
        python = env_python(locked.conda)
        compiler = bytecode_compiler(python, cache, reporter) if python else None
        reporter.info(f"Installing {len(locked.conda)} conda package(s)")
        built = build_conda_layers(
            locked.conda,
            cache,
            prefix=config.ENV_PREFIX,
            python=python,
            compiler=compiler,
            compression=spec.compression,
            on_built=early,
            progress=lambda done, total: reporter.advance("layers", done, total),
            cancel=cancel,
        )
        if locked.packages:
            built += self._wheel_layers(spec, locked, cache, compiler, reporter, early, cancel)
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
        return [*packages, build_conda_env_layer(cache, config.ENV_PREFIX, spec.compression)]

    def _wheel_layers(
        self,
        spec: Spec,
        locked: Lock,
        cache: Path,
        compiler: "Compiler | None",
        reporter: Reporter,
        on_built: Callable[[BuiltLayer], None] | None,
        cancel: CancelToken,
    ) -> list[BuiltLayer]:
        from bakery.layers.packages import build_package_layers

        reporter.info(f"Downloading {len(locked.packages)} wheel(s) for the conda env")
        return build_package_layers(
            locked.packages,
            cache,
            python=locked.python,
            compiler=compiler,
            prefix=config.ENV_PREFIX,
            compression=spec.compression,
            on_built=on_built,
            cancel=cancel,
        )
