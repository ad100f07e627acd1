"""conda-lock lockfiles, in and out, through conda-lock's own models.

Out: a conda lock becomes a conda-lock (format 1 on disk, as conda-lock writes it) file for
its platform, deterministic (no timestamps, packages sorted), so the same env always reads the
same. In: a conda-lock file (format 1 or 2) becomes the packages of one platform, used as is:
nothing is solved. A package is recorded by exactly what a conda-lock file holds (name,
version, build, URL, md5, sha256, dependencies), so baking from the lockfile of an image
locks to the very same value, and gives the same image.
"""

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bakery.errors import ImageBakingException, quoted, shorten
from bakery.lock import CondaPackage, Lock

if TYPE_CHECKING:
    from bakery.conda.specs import CondaSource

SOURCE = "bakery"
"""The lockfile's `sources`: it was written by a bake, not from a file next to it."""


def dependencies(depends: Iterable[str]) -> dict[str, str]:
    """Match specs as conda-lock records them: {name: the rest of the spec}."""
    found: dict[str, str] = {}
    for spec in depends:
        name, _, rest = spec.strip().partition(" ")
        found.setdefault(name, rest.strip())
    return dict(sorted(found.items()))


def depends_of(dependencies: Mapping[str, str]) -> tuple[str, ...]:
    """Inverse of `dependencies`: the match specs, sorted."""
    return tuple(f"{name} {rest}".strip() for name, rest in sorted(dependencies.items()))


def locked_json(packages: Iterable[CondaPackage]) -> str:
    """The canonical JSON of locked packages a Spec carries (sorted by name)."""
    rows = [asdict(p) for p in sorted(packages, key=lambda p: p.name)]
    return json.dumps(rows, sort_keys=True, separators=(",", ":"))


def packages_of(locked: str) -> tuple[CondaPackage, ...]:
    """Inverse of `locked_json`."""
    return tuple(
        CondaPackage(**{**row, "depends": tuple(row["depends"])}) for row in json.loads(locked)
    )


def conda_lock_text(lock: Lock, channels: Iterable[str], subdir: str) -> str:
    """The conda lock `lock` as a conda-lock file (YAML) for `subdir`."""
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import (
        HashModel,
        LockedDependency,
        Lockfile,
        LockMeta,
    )

    package = [
        LockedDependency(
            name=p.name,
            version=p.version,
            manager="conda",
            platform=subdir,
            dependencies=dependencies(p.depends),
            url=p.url,
            hash=HashModel(md5=p.md5, sha256=p.sha256),
            categories={"main"},
            build=p.build,
        )
        for p in lock.conda
    ]
    lockfile = Lockfile(
        package=package,
        metadata=LockMeta(
            content_hash={subdir: lock.digest},
            channels=list(channels),
            platforms=[subdir],
            sources=[SOURCE],
        ),
    )
    with tempfile.TemporaryDirectory(prefix="bakery-conda-lock-") as scratch:
        path = Path(scratch) / "conda-lock.yml"
        write_conda_lock_file(lockfile, path, metadata_choices=None, include_help_text=False)
        return path.read_text()


def read_conda_lock(path: Path, subdir: str) -> "CondaSource":
    """The conda packages a conda-lock file pins for `subdir` and its channels."""
    from bakery.conda.channels import normalize_channel
    from bakery.conda.specs import CondaSource
    from bakery.spec import _read_text

    text = _read_text(path, "conda-lock file")  # size and file-type checks, UTF-8
    lockfile = _parse(path, text)
    shown = shorten(str(path))
    pip = sorted({p.name for p in lockfile.package if p.manager == "pip"})
    if pip:
        raise ImageBakingException(
            f"{shown} pins PyPI packages ({shorten(', '.join(pip), 120)}); the bakery reads the "
            "conda packages of a conda-lock file only: give the PyPI ones as pypi= or "
            "requirements_file=."
        )
    packages = [p for p in lockfile.package if p.platform == subdir]
    if not packages:
        platforms = sorted({p.platform for p in lockfile.package})
        raise ImageBakingException(
            f"{shown} has no packages for {subdir} (it has {', '.join(platforms) or 'none'}); "
            "lock it for the target platform or pick another platform."
        )
    locked = [_package(p, shown) for p in packages]
    try:
        channels = tuple(normalize_channel(c.url) for c in lockfile.metadata.channels)
    except ValueError as exc:
        raise ImageBakingException(f"{shown}: {exc}.") from None
    return CondaSource(specs=(), channels=channels, locked=locked_json(locked))


def _parse(path: Path, text: str) -> Any:
    """conda-lock's own model of the file; anything it refuses is an ImageBakingException."""
    import yaml
    from conda_lock.lockfile import parse_conda_lock_file

    shown = shorten(str(path))
    try:
        if not isinstance(yaml.safe_load(text), dict):
            raise ValueError("it is not a YAML mapping")
        return parse_conda_lock_file(path)
    except Exception as exc:  # yaml, pydantic and conda-lock's own errors alike
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if callable(getattr(exc, "errors", None)):  # pydantic: say where and what
            first = exc.errors()[0]  # type: ignore[attr-defined]
            reason = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        reason = shorten(reason, 200)
        raise ImageBakingException(
            f"{shown} is not a conda-lock file conda-lock can read: {reason}."
        ) from None


def _package(dependency: Any, shown: str) -> CondaPackage:
    url = dependency.url
    filename = PurePosixPath(urlsplit(url).path).name
    if not dependency.hash.sha256:
        raise ImageBakingException(
            f"{shown} gives no sha256 for {quoted(dependency.name)}; the bakery installs only "
            "artifacts verified by sha256. Lock again with a current conda-lock."
        )
    build = dependency.build or filename.removesuffix(".conda").removesuffix(".tar.bz2")
    build = build.rsplit("-", 1)[-1]
    return CondaPackage(
        name=dependency.name,
        version=dependency.version,
        build=build,
        subdir=PurePosixPath(urlsplit(url).path).parent.name,
        url=url,
        sha256=dependency.hash.sha256,
        md5=dependency.hash.md5,
        depends=depends_of(dependency.dependencies),
    )
