"""Source distributions, read on the host without running them: which sdist to build (from
the index's PEP 691 JSON) and what building it needs (its pyproject's `[build-system]`).

Only bytes are read here: the sdist's `pyproject.toml` is parsed as TOML and its member names
listed. Its code runs only inside BuildKit.
"""

import re
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename

from bakery.errors import ImageBakingException, shorten
from bakery.lock import LockedPackage
from bakery.spec import Spec
from stagekit.errors import ErrorKind

DEFAULT_INDEX = "https://pypi.org/simple"
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
"""PEP 517's fallback for an sdist without `[build-system]` (a setup.py project)."""
COMPILED_SUFFIXES = frozenset({".c", ".cc", ".cpp", ".cxx", ".pyx", ".f", ".f90"})
"""Sources that mean a build needs a C (or Fortran) compiler in the build environment."""
MAX_PYPROJECT_BYTES = 1 << 20
_PINNED = re.compile(r"(\S+?)==(\S+?) has no usable wheels")
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class BuildSystem:
    """What a PEP 517 build of one sdist needs: `requires`, the `backend` ("module:object")
    and its in-tree `backend_path`; `compiles` when it holds C/C++/Cython/Fortran sources."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...]
    compiles: bool


def unbuilt_versions(details: str | None, names: tuple[str, ...]) -> dict[str, str | None]:
    """uv's no-wheel report as {canonical name: the one version it narrowed to, or None}."""
    pinned = {canonicalize_name(m.group(1)): m.group(2) for m in _PINNED.finditer(details or "")}
    return {canonicalize_name(name): pinned.get(canonicalize_name(name)) for name in names}


def find_sdist(name: str, version: str | None, spec: Spec) -> LockedPackage:
    """The sdist of `name` to build: `version` if given, else the newest one the spec's own
    requirements on `name` allow (no pre-releases unless asked for), from the first of the
    spec's indexes that has one (its extra indexes first, as uv prefers them)."""
    indexes = [*spec.extra_index_urls, spec.index_url or DEFAULT_INDEX]
    for index in indexes[:-1]:
        try:
            return _find_sdist(index.rstrip("/"), name, version, spec)
        except ImageBakingException:
            continue
    return _find_sdist(indexes[-1].rstrip("/"), name, version, spec)


def _find_sdist(index: str, name: str, version: str | None, spec: Spec) -> LockedPackage:
    url = f"{index}/{name}/"
    try:
        response = httpx.get(
            url, headers={"Accept": _SIMPLE_JSON}, follow_redirects=True, timeout=30.0
        )
        response.raise_for_status()
        files = response.json()["files"]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        raise ImageBakingException(
            f"Could not list the files of {name} at {url} ({shorten(str(error), 200)}); the "
            "execution builder needs the index's JSON API (PEP 691) to find its sdist.",
            kind=ErrorKind.UNAVAILABLE,
        ) from None
    allowed = _specifier(name, spec)
    candidates = []
    for file in files:
        try:
            _, found = parse_sdist_filename(file["filename"])
        except InvalidSdistFilename:
            continue
        if file.get("yanked") or "sha256" not in file.get("hashes", {}):
            continue
        if version is not None and str(found) != version:
            continue
        if version is None and found not in allowed:
            continue
        candidates.append((found, file))
    if not candidates:
        wanted = f"{name}=={version}" if version else f"{name}{allowed or ''}"
        raise ImageBakingException(
            f"{wanted} has no wheel for the target and no sdist on {index} with a sha256: "
            "nothing to build it from. Pin a version that publishes one."
        )
    found, file = max(candidates, key=lambda candidate: candidate[0])
    return LockedPackage(
        name=canonicalize_name(name),
        version=str(found),
        url=str(httpx.URL(url).join(file["url"])),
        filename=file["filename"],
        sha256=file["hashes"]["sha256"],
        size=file.get("size"),
    )


def _specifier(name: str, spec: Spec) -> SpecifierSet:
    wanted = SpecifierSet()
    for text in spec.requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) == canonicalize_name(name):
            wanted &= requirement.specifier
    return wanted


def build_system(sdist: Path, filename: str) -> BuildSystem:
    """The `[build-system]` of the sdist at `sdist` (named `filename`), PEP 517's setuptools
    fallback when it has none."""
    names, pyproject = _members(sdist, filename)
    compiles = any(PurePosixPath(name).suffix.lower() in COMPILED_SUFFIXES for name in names)
    table: dict = {}
    if pyproject is not None:
        try:
            table = tomllib.loads(pyproject.decode()).get("build-system", {})
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ImageBakingException(
                f"The pyproject.toml in {filename} is not valid TOML ({error}); the sdist "
                "cannot be built. Pin another version."
            ) from None
    if "build-backend" not in table:
        requires = tuple(table.get("requires", LEGACY_REQUIRES))
        backend, backend_path = LEGACY_BACKEND, tuple[str, ...]()
    else:
        requires = tuple(table.get("requires", ()))
        backend = str(table["build-backend"])
        backend_path = tuple(str(p) for p in table.get("backend-path", ()))
    if backend.startswith("setuptools") and not any(
        canonicalize_name(_name_of(r)) == "wheel" for r in requires
    ):
        requires += ("wheel",)  # older setuptools asks for it at build time
    return BuildSystem(requires, backend, backend_path, compiles)


def _name_of(requirement: str) -> str:
    try:
        return Requirement(requirement).name
    except InvalidRequirement:
        return requirement


def _members(sdist: Path, filename: str) -> tuple[list[str], bytes | None]:
    """Member names of the archive, and its top-level pyproject.toml (if any)."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                names = archive.namelist()
                top = _top_pyproject(names)
                return names, archive.read(top)[:MAX_PYPROJECT_BYTES] if top else None
        with tarfile.open(sdist) as archive:
            members = archive.getmembers()
            names = [m.name for m in members]
            top = _top_pyproject(names)
            if top is None:
                return names, None
            extracted = archive.extractfile(top)
            return names, extracted.read(MAX_PYPROJECT_BYTES) if extracted else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
        raise ImageBakingException(
            f"{filename} is not a readable sdist archive ({error}); pin another version."
        ) from None


def _top_pyproject(names: list[str]) -> str | None:
    for name in names:
        parts = PurePosixPath(name).parts
        if len(parts) == 2 and parts[1] == "pyproject.toml":
            return name
    return None
