"""PyPI requirements on top of a conda env: resolved by uv for the env's Python, without
reinstalling what conda provides.

The rule: a Python distribution that a conda package of the env provides is taken from conda.
A conda package provides the PyPI distribution of the same (canonical) name when it depends
on python, the way conda-forge names its Python packages (the exceptions, e.g. `pytorch` for
`torch`, are not mapped: list those in pypi= under their conda name, or in conda=). uv
resolves the requirements; if it picked a distribution conda provides, it resolves again with
that distribution pinned to conda's version, and the wheel is left out of the image.
"""

import dataclasses
from collections.abc import Sequence

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bakery.errors import ImageBakingException
from bakery.lock import CondaPackage, LockedPackage, lock
from bakery.spec import Spec


def provided_by_conda(packages: Sequence[CondaPackage]) -> dict[str, str]:
    """{canonical PyPI name: version} of the Python distributions the conda packages provide."""
    return {
        canonicalize_name(p.name): p.version
        for p in packages
        if p.name != "python" and any(d.split(" ")[0] == "python" for d in p.depends)
    }


def lock_on_conda(
    spec: Spec, python: str, conda: Sequence[CondaPackage], timeout: float
) -> tuple[LockedPackage, ...]:
    """The wheels `spec.requirements` need on the conda env of Python `python`, less those
    conda provides."""
    pypi = dataclasses.replace(
        spec, kind="pypi", python=python, conda=(), channels=(), conda_locked=None
    )
    provided = provided_by_conda(conda)
    wheels = lock(pypi, timeout=timeout).packages
    pins = [
        f"{w.name}=={provided[w.name]}"
        for w in wheels
        if w.name in provided and w.version != provided[w.name] and _pep440(provided[w.name])
    ]
    if pins:
        pinned = dataclasses.replace(pypi, requirements=(*pypi.requirements, *pins))
        try:
            wheels = lock(pinned, timeout=timeout).packages
        except ImageBakingException as exc:
            raise ImageBakingException(
                f"The PyPI requirements need versions other than the ones the conda env "
                f"provides ({', '.join(pins)}): {exc.message}",
                details=exc.details,
                kind=exc.kind,
            ) from None
    return tuple(w for w in wheels if w.name not in provided)


def _pep440(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True
