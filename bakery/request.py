"""A bake request as one typed value: everything `bake_image` takes.

`bake_image(**options)` builds a `BakeRequest`; `check()` refuses bad input before any base
image, registry or index is touched. The service's `BakeRequest` message maps onto it field
for field, so a remote bake and a local one go through the same checks.
"""

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakery import config
from bakery.base.source import parse_base
from bakery.errors import ImageBakingException, quoted, shorten

if TYPE_CHECKING:  # the spec parses requirements with `packaging`: loaded when a bake runs
    from bakery.spec import Spec

OPTIONS = (
    "platform",
    "registry",
    "target",
    "force",
    "progress",
    "events",
    "compression",
    "cancel",
    "timeout",
    "service",
    "max_age",
    "environment",
    "conda_lock",
    "channels",
    "cuda",
    "build",
    "system_packages",
)
"""The keyword options `bake_image` takes beyond the reference's named parameters."""

_UNPINNED = "sha256:" + "0" * 64


@dataclass(frozen=True)
class BakeRequest:
    """What to bake (one of pypi, requirements_file, pyproject_toml and/or one of conda,
    environment, conda_lock), on which base, for which target, and where the image goes.
    None means "the default"."""

    pypi: Mapping[str, str] | None = None
    requirements_file: str | Path | None = None
    pyproject_toml: str | Path | None = None
    conda: Mapping[str, str] | None = None
    environment: str | Path | None = None
    """An environment.yml: conda specs, channels and its `pip:` requirements."""
    conda_lock: str | Path | None = None
    """A conda-lock file: its packages for the target platform, used as is."""
    channels: Sequence[str] | None = None
    """Conda channels, highest priority first; None: BAKERY_CONDA_CHANNELS or conda-forge."""
    cuda: str | None = None
    """The CUDA driver version conda solves may assume (`__cuda`); None: no CUDA."""
    base_image: str | None = None
    python: str | None = None
    platform: str | None = None
    cache_name: str | None = None
    compression: str | None = None
    force: bool = False
    registry: str | None = None
    target: str | None = None
    max_age: float | None = None
    """Seconds after which an unpinned spec is resolved again (0: now); None: the default,
    BAKERY_SPEC_MAX_AGE (unset: never)."""
    build: bool = True
    """Build sdist-only packages in BuildKit; False: such a package is an error."""
    system_packages: tuple[str, ...] = ()
    """Debian packages installed with apt in BuildKit, one layer under the packages."""

    def check(self) -> None:
        """Refuse bad input now, with a short ImageBakingException, before any I/O beyond
        reading the dependency file itself."""
        for name in (
            "platform",
            "registry",
            "target",
            "compression",
            "python",
            "base_image",
            "cuda",
        ):
            _optional_text(getattr(self, name), name)
        for flag in ("force", "build"):
            if not isinstance(getattr(self, flag), bool):
                raise ImageBakingException(
                    f"{flag} must be True or False, not {quoted(getattr(self, flag))}."
                )
        _check_max_age(self.max_age)
        _ = self.spec_max_age  # a malformed BAKERY_SPEC_MAX_AGE is refused now
        base = self.base_reference
        if base is not None:
            parse_base(base)  # a malformed reference is refused now, not after the spec
        from bakery.spec import DEFAULT_PYTHON

        self.spec(_UNPINNED, self.python or DEFAULT_PYTHON)

    @property
    def is_conda(self) -> bool:
        """Whether it names conda packages (a conda spec, environment.yml or conda-lock)."""
        return any(v is not None for v in (self.conda, self.environment, self.conda_lock))

    @property
    def base_reference(self) -> str | None:
        """The base image asked for, else BAKERY_BASE_IMAGE; None: the embedded default."""
        return self.base_image if self.base_image is not None else config.base_image()

    @property
    def spec_max_age(self) -> float | None:
        """The max age this bake applies: `max_age`, else BAKERY_SPEC_MAX_AGE, else None."""
        return config.spec_max_age() if self.max_age is None else self.max_age

    @property
    def target_platform(self) -> str:
        return config.platform() if self.platform is None else self.platform

    def spec(self, base_digest: str, python: str) -> "Spec":
        """The normalized spec of this request on a base pinned to `base_digest`."""
        from bakery.spec import make_spec

        return make_spec(
            pypi=self.pypi,
            requirements_file=self.requirements_file,
            pyproject_toml=self.pyproject_toml,
            conda=self.conda,
            environment=self.environment,
            conda_lock=self.conda_lock,
            channels=self.channels,
            conda_python=self.python,
            cuda=self.cuda,
            base_image_digest=base_digest,
            platform=self.target_platform,
            python=python,
            cache_name=self.cache_name,
            compression="gzip" if self.compression is None else self.compression,
            source_date_epoch=config.source_date_epoch(),
            system_packages=self.system_packages,
        )


def request_from_call(arguments: Mapping[str, Any], options: Mapping[str, Any]) -> BakeRequest:
    """A `BakeRequest` from `bake_image`'s named arguments and keyword options; unknown
    options are refused, naming the known ones."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ImageBakingException(
            f"unknown option(s) {shorten(str(sorted(map(str, unknown))))}; known options: "
            f"{sorted(OPTIONS)}"
        )
    for name in ("logger", "progress", "events"):
        callback = arguments.get(name, options.get(name))
        if callback is not None and not callable(callback):
            raise ImageBakingException(
                f"{name} must be a callable or None, not {quoted(callback)}."
            )
    named = {key: value for key, value in arguments.items() if key != "logger"}
    chosen = {
        key: options.get(key)
        for key in (
            "platform",
            "registry",
            "target",
            "compression",
            "environment",
            "conda_lock",
            "channels",
            "cuda",
        )
    }
    max_age = options.get("max_age")
    if isinstance(max_age, datetime.timedelta):
        max_age = max_age.total_seconds()
    return BakeRequest(
        **named,
        **chosen,
        force=options.get("force", False),
        max_age=max_age,
        build=options.get("build", True),
        system_packages=_system_packages(options.get("system_packages")),
    )


def _system_packages(value: object) -> tuple[str, ...]:
    """`system_packages=` as a tuple: a list or tuple of names (checked by the Spec)."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ImageBakingException(
            f"system_packages must be a list of Debian package names, not {quoted(value)}."
        )
    return tuple(value)


def _check_max_age(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImageBakingException(
            f"max_age must be seconds (a number) or a datetime.timedelta, not {quoted(value)}."
        )
    if value < 0:
        raise ImageBakingException(
            f"max_age is negative ({value:g}); give 0 to re-resolve now, or leave it out (None) "
            "for the default."
        )


def _optional_text(value: object, name: str) -> None:
    """None, or a non-empty printable string: an empty string is not a way to ask for the
    default."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ImageBakingException(f"{name} must be a string or None, not {quoted(value)}.")
    if not value.strip():
        raise ImageBakingException(
            f"{name} is empty ({quoted(value)}); leave it out (None) for the default."
        )
    from bakery.spec import one_line

    one_line(value, f"{name} {quoted(value)}")
