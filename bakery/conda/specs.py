"""Conda inputs -> the conda fields of a `Spec`: match specs, channels, or a given lock.

`conda={"numpy": "1.26.*", "python": "3.11"}` values are conda match specs: empty means any
version, a bare version means that version and its patches (`3.11` is `3.11.*`, as conda's
`python=3.11`), anything else is the version (and build) part of a match spec (`>=1.26,<2`,
`1.26.4 py311_0`). Every spec is parsed by rattler and kept in rattler's spelling.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bakery.errors import ImageBakingException, quoted
from bakery.platforms import CONDA_SUBDIRS


@dataclass(frozen=True)
class CondaSource:
    """The conda part of a bake: match specs to solve or a lock (JSON) to use as is, the
    channels, and the PyPI requirements an environment.yml's `pip:` section names."""

    specs: tuple[str, ...]
    channels: tuple[str, ...]
    locked: str | None = None
    pip: tuple[str, ...] = ()


def normalize_match_spec(text: str) -> str:
    """`text` as rattler spells the match spec; ValueError if it is not one."""
    from rattler import MatchSpec

    from bakery.spec import one_line

    one_line(text, f"conda match spec {quoted(text)}")
    try:
        spec = MatchSpec(text)
    except Exception as exc:  # rattler's InvalidMatchSpecError
        raise ValueError(f"{quoted(text)} is not a conda match spec: {exc}") from None
    if spec.name is None:
        raise ValueError(f"conda match spec {quoted(text)} names no package")
    return str(spec)


def match_spec(name: object, value: object) -> str:
    """One `conda={name: value}` entry as a match spec string."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise ImageBakingException(
            f"conda entries must map a package name to a version string such as '1.26.*' or "
            f"'', not {quoted(name)}: {quoted(value)}."
        )
    value = value.strip()
    if not value:
        return name
    if value[0].isdigit() and " " not in value and not any(c in value for c in "<>=!,|*"):
        return f"{name}={value}"
    return f"{name} {value}"


def conda_source(
    *,
    conda: Mapping[str, str] | None,
    environment: str | Path | None,
    conda_lock: str | Path | None,
    channels: Sequence[str] | None,
    platform: str,
    python: str | None,
) -> CondaSource:
    """The conda source given (exactly one of `conda`, `environment`, `conda_lock`), with
    `python` (the Python asked for, if any) added as `python X.Y.*` to solved specs."""
    from bakery.conda.channels import configured_channels

    try:
        chosen = configured_channels(channels)
    except TypeError as exc:
        raise ImageBakingException(f"{exc}.") from None
    if conda is not None:
        if not isinstance(conda, Mapping):
            raise ImageBakingException(
                "conda must be a dict of package name to match spec, e.g. {'numpy': '1.26.*'}, "
                f"not {type(conda).__name__} {quoted(conda)}."
            )
        source = CondaSource(tuple(match_spec(n, v) for n, v in conda.items()), chosen)
    elif environment is not None:
        from bakery.conda.environment import read_environment
        from bakery.spec import input_path

        source = read_environment(input_path(environment, "environment"), channels)
    else:
        from bakery.conda.lockfile import read_conda_lock
        from bakery.spec import input_path

        assert conda_lock is not None  # one conda source was given
        if platform not in CONDA_SUBDIRS:
            raise ImageBakingException(
                f"platform {quoted(platform)} is not supported; use one of {list(CONDA_SUBDIRS)}."
            )
        return read_conda_lock(input_path(conda_lock, "conda_lock"), CONDA_SUBDIRS[platform])
    if python is not None and not any(_names_python(spec) for spec in source.specs):
        source = CondaSource((*source.specs, f"python={python}"), source.channels, None, source.pip)
    return source


def _names_python(spec: str) -> bool:
    name = spec.split("::")[-1]
    return name == "python" or name.startswith(("python ", "python=", "python<", "python>"))
