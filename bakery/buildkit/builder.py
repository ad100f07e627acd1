"""The execution builder as the PyPI ecosystem uses it: lock with sdists, layer their wheels.

Locking stays wheels-only and runs no package code: when uv finds no wheel for some
packages, their sdists are built into wheels in BuildKit and handed back to uv as
find-links, so uv reads the built wheels' metadata (dependencies included) and resolves
again; the lock records the sdist (URL, sha256), never the local wheel. Layering swaps each
locked sdist for its built wheel (cached, so a second bake builds nothing).
"""

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bakery.errors import ImageBakingException
from bakery.lock import Lock, LockedPackage, NoWheelError, lock
from bakery.spec import Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter

if TYPE_CHECKING:  # the wheel builder loads grpc: imported when a build needs it
    from bakery.buildkit.wheels import BuiltWheel, WheelBuilder
    from bakery.layers.model import BuiltLayer

MAX_ROUNDS = 16
"""Most rounds of build-then-resolve (each finds the sdist-only dependencies of the last)."""
NO_BUILD = (
    "Building sdists is turned off (--no-build / build=False): bake without it to build "
    "them in BuildKit."
)


@dataclass
class ExecutionBuilder:
    """What the ecosystem needs to build: the pinned base BuildKit pulls (`base_reference`,
    None when the base is not in a registry), the base's Python, whether builds are allowed."""

    base_reference: str | None
    base_python: str | None
    layout_base: str | None = field(default=None, kw_only=True)
    """A pinned `oci-layout://` base: loaded into the Docker Engine when a build needs it."""
    cache: Path
    reporter: Reporter
    allowed: bool = True
    address: str | None = None
    built: int = field(default=0, init=False)
    """Wheels built in BuildKit by this builder (cache hits not counted)."""

    def lock(self, spec: Spec, cancel: CancelToken, timeout: float) -> Lock:
        """`spec` locked, its sdist-only packages built (or taken from the cache) first."""
        try:
            return lock(spec, timeout=timeout)
        except NoWheelError as no_wheel:
            if not self.allowed:
                raise ImageBakingException(
                    f"{no_wheel.message}\n{NO_BUILD}", details=no_wheel.details
                ) from None
            missing = no_wheel
        from bakery.buildkit.sdists import find_sdist, unbuilt_versions

        wheels = self._wheels(spec)
        sdists: dict[str, LockedPackage] = {}
        with tempfile.TemporaryDirectory(prefix="bakery-find-links-") as links:
            for _ in range(MAX_ROUNDS):
                wanted = unbuilt_versions(missing.details, missing.packages)
                new = {name: v for name, v in wanted.items() if name not in sdists}
                if not new:  # uv rejects the wheel built for a package (a version conflict)
                    names = ", ".join(sorted(wanted))
                    raise ImageBakingException(
                        f"The wheels built from the sdists of {names} do not satisfy the "
                        "requirements (the sdist chosen is the newest the spec allows; pin the "
                        f"version the other packages need).\n{missing.message}",
                        details=missing.details,
                    )
                for name, version in sorted(new.items()):
                    cancel.check()
                    sdist = find_sdist(name, version, spec)
                    self.reporter.info(
                        f"{name} has no wheel for the target: building {sdist.filename}"
                    )
                    wheel = self._wheel(wheels, sdist, cancel)
                    os.symlink(wheel.path, Path(links) / wheel.filename)
                    sdists[name] = sdist
                try:
                    return lock(spec, timeout=timeout, find_links=Path(links), built=sdists)
                except NoWheelError as again:
                    missing = again
        raise ImageBakingException(
            f"More than {MAX_ROUNDS} rounds of sdist builds did not resolve the spec; pin "
            "versions that publish wheels."
        )

    def layered(
        self, spec: Spec, packages: Sequence[LockedPackage], cancel: CancelToken
    ) -> list[LockedPackage]:
        """`packages` with each sdist replaced by its built wheel (built now if not cached)."""
        if not any(package.is_sdist for package in packages):
            return list(packages)
        if not self.allowed:
            names = ", ".join(p.name for p in packages if p.is_sdist)
            raise ImageBakingException(f"The lock names sdists ({names}). {NO_BUILD}")
        wheels = self._wheels(spec)
        replaced = []
        for package in packages:
            if package.is_sdist:
                wheel = self._wheel(wheels, package, cancel)
                package = replace(
                    package, filename=wheel.filename, sha256=wheel.sha256, size=wheel.size
                )
            replaced.append(package)
        return replaced

    def system_layer(self, spec: Spec, cancel: CancelToken) -> "BuiltLayer":
        """The layer of the files `spec.system_packages` add (apt in BuildKit, cached)."""
        from bakery.buildkit.apt import build_apt_layer

        base = self._pullable_base("Installing system packages", spec.platform)
        return build_apt_layer(spec, base, self.cache, self.reporter, cancel)

    def _pullable_base(self, what: str, platform: str) -> str:
        """The base as BuildKit names it: the registry reference, or a layout base loaded
        into the engine whose BuildKit builds (a buildkitd cannot see it)."""
        if self.base_reference is None and self.layout_base is not None:
            from bakery.buildkit.address import buildkit_address
            from bakery.buildkit.local_base import load_into_engine

            if buildkit_address(self.address).kind == "docker":
                self.base_reference = load_into_engine(
                    self.layout_base, self.cache, platform, self.reporter
                )
        if self.base_reference is None:
            raise ImageBakingException(
                f"{what} needs a base image BuildKit can pull: bake with base_image= (or "
                "BAKERY_BASE_IMAGE) naming a registry image, or use BAKERY_BUILDKIT=docker "
                "for an oci-layout:// base."
            )
        return self.base_reference

    def _wheels(self, spec: Spec) -> "WheelBuilder":
        base = self._pullable_base("Building sdists", spec.platform)
        if self.base_python is not None and self.base_python != spec.python:
            raise ImageBakingException(
                f"sdists are built with the base's Python {self.base_python}, but the target "
                f"is Python {spec.python}: bake with python={self.base_python!r}, or on a "
                f"base whose python3 is {spec.python}."
            )
        from bakery.buildkit.wheels import WheelBuilder

        return WheelBuilder(spec, base, self.cache, self.reporter, self.address)

    def _wheel(
        self, wheels: "WheelBuilder", sdist: LockedPackage, cancel: CancelToken
    ) -> "BuiltWheel":
        found = wheels.cached(sdist)
        if found is not None:
            self.reporter.info(f"Using the wheel built earlier from {sdist.filename}")
            return found
        self.built += 1
        return wheels.wheel(sdist, cancel)


def execution_builder(
    pinned_base: str, base_python: str | None, reporter: Reporter, *, allowed: bool
) -> ExecutionBuilder:
    """The builder of a bake on `pinned_base` (a pinned reference; a layout base is loaded
    into the engine only if a build needs it)."""
    from bakery import config
    from bakery.base.source import parse_base

    registry = parse_base(pinned_base).registry is not None
    return ExecutionBuilder(
        base_reference=pinned_base if registry else None,
        base_python=base_python,
        layout_base=None if registry else pinned_base,
        cache=config.bake_cache_dir(),
        reporter=reporter,
        allowed=allowed,
    )
