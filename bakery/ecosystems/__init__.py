"""Ecosystems: how a spec of one kind becomes locked artifacts and then layers.

The bake is one pipeline, spec -> lock -> artifacts -> layers -> env layer, and the part
that knows a package manager sits behind `Ecosystem`: PyPI (uv, wheels) and conda (rattler,
conda-lock; PyPI wheels on top); artifacts built by the execution builder (BuildKit) plug in
beside them. The
base image, the layer budget, the image assembly, caching and publishing are shared.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bakery.base.model import BaseImage
from bakery.layers.model import BuiltLayer
from bakery.lock import Lock
from bakery.spec import Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter

if TYPE_CHECKING:
    from bakery.buildkit.builder import ExecutionBuilder


class Ecosystem(Protocol):
    kind: str
    prefix_variable: str
    """The image variable naming the env's prefix: VIRTUAL_ENV, CONDA_PREFIX."""

    def lock(self, spec: Spec, base: BaseImage, cancel: CancelToken) -> Lock:
        """Resolve the spec for its target platform and Python (and what `base` provides):
        exact artifacts, verified."""
        ...

    def image_spec_id(self, spec: Spec, locked: Lock) -> str:
        """The spec id the image is labelled with: `spec.spec_id`, or for a spec that is
        solved, that of its locked form (so baking its lock gives the same image)."""
        ...

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
        """The layers to put on `base`, lowest first, at most `room` of them: the interpreter
        if the base lacks it, one per package (merged to fit), the env layer on top.
        `on_built` sees each package layer as soon as it is built (to push it early)."""
        ...


def ecosystem_for(spec: Spec, builder: "ExecutionBuilder | None" = None) -> Ecosystem:
    """The ecosystem that bakes specs of `spec.kind`; `builder` builds what has no binary
    artifact (sdists) in BuildKit, None: binary artifacts only."""
    if spec.kind == "pypi":
        from bakery.ecosystems.pypi import PyPI

        return PyPI(builder)
    if spec.kind == "conda":
        from bakery.ecosystems.conda import Conda

        if spec.system_packages:
            from bakery.errors import ImageBakingException

            raise ImageBakingException(
                "system_packages are not supported with conda specs yet: install the "
                "libraries from conda packages, or bake a pypi spec."
            )
        return Conda()
    raise AssertionError(f"Spec validation admits no kind {spec.kind!r}")
