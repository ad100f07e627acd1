"""Resolution: a `Spec` becomes a `Lock` of exact wheels for the target, via `uv pip compile`.

uv resolves for the *target* platform and Python (never the host's), wheels only, and writes
a PEP 751 `pylock.toml` that already names every wheel's URL, size and sha256. So nothing is
downloaded or executed here; the lock is data that the later stages fetch and unpack.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import blake3
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from bakery.errors import ImageBakingException, shorten
from bakery.platforms import ARCHITECTURES
from bakery.spec import Spec, python_tag
from stagekit.errors import ErrorKind

GLIBC_MINOR = 28
"""Target manylinux_2_28: any glibc >= 2.28 base (Debian 10+, RHEL 8+) runs the wheels."""

_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
_LEGACY_MANYLINUX = {(17, "x86_64"): "manylinux2014", (17, "aarch64"): "manylinux2014"}
_LEGACY_MANYLINUX |= {(12, "x86_64"): "manylinux2010", (5, "x86_64"): "manylinux1"}
_NO_WHEEL = re.compile(r"(\S+?)(?:[=<>!~]=?\S*)? (?:has|have) no usable wheels")
_UNREACHABLE = ("Failed to fetch", "error sending request", "Could not connect", "dns error")
"""uv's words for an index it could not reach (a failure worth retrying, unlike a conflict)."""
_NOT_FOUND = re.compile(r"(\S+) was not found in the package registry")


@dataclass(frozen=True)
class LockedPackage:
    """One resolved distribution and the single wheel chosen for the target."""

    name: str
    version: str
    url: str
    filename: str
    sha256: str
    size: int | None

    @property
    def is_sdist(self) -> bool:
        """Locked as a source distribution: the execution builder makes its wheel."""
        return not self.filename.endswith(".whl")


class NoWheelError(ImageBakingException):
    """Some packages have no wheel for the target; `packages` names them (canonical names,
    `name==version` when uv narrowed them to one version)."""

    def __init__(self, message: str, *, packages: tuple[str, ...], details: str | None) -> None:
        super().__init__(message, details=details)
        self.packages = packages


@dataclass(frozen=True)
class CondaPackage:
    """One conda package of a solved (or given) environment: what a conda-lock lockfile
    records of it, so that a bake from that lockfile locks to the very same value."""

    name: str
    version: str
    build: str
    subdir: str
    url: str
    sha256: str
    md5: str
    depends: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return unquote(PurePosixPath(urlsplit(self.url).path).name)

    @property
    def channel(self) -> str:
        """The channel URL: the package URL without `<subdir>/<filename>`."""
        return self.url.rsplit("/", 2)[0] + "/"


LOCK_FORMAT = 2
"""Version of the lock's JSON (the image's lock annotation); 2: it names its kind and format."""


@dataclass(frozen=True)
class Lock:
    """The exact wheels one spec resolved to, sorted by name; `digest` names the set.

    `kind` is the ecosystem that locked it (the spec's kind); images baked before locks
    carried kind and format read back as a format 1 PyPI lock. A conda lock also holds the
    conda packages (`conda`, sorted by name); its `packages` are the PyPI wheels layered on
    top of the conda env, if any."""

    platform: str
    python: str
    packages: tuple[LockedPackage, ...]
    kind: str = "pypi"
    format: int = LOCK_FORMAT
    conda: tuple[CondaPackage, ...] = ()
    channels: tuple[str, ...] = ()
    """The conda channels solved from, highest priority first."""

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, compact): the same lock always gives the same text.
        A lock without conda packages leaves those keys out (PyPI locks read as before)."""
        fields = asdict(self)
        if not self.conda:
            del fields["conda"], fields["channels"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Lock":
        """Inverse of `to_json`."""
        data = json.loads(text)
        packages = tuple(LockedPackage(**p) for p in data["packages"])
        conda = tuple(
            CondaPackage(**{**p, "depends": tuple(p.get("depends", ()))})
            for p in data.get("conda", ())
        )
        return cls(
            platform=data["platform"],
            python=data["python"],
            packages=packages,
            kind=data.get("kind", "pypi"),
            format=data.get("format", 1),
            conda=conda,
            channels=tuple(data.get("channels", ())),
        )

    @property
    def digest(self) -> str:
        """blake3 hex of `to_json()`."""
        return blake3.blake3(self.to_json().encode()).hexdigest()


def uv_platform(platform: str) -> str:
    """uv's `--python-platform` name for an OCI platform, e.g. `x86_64-manylinux_2_28`."""
    return f"{ARCHITECTURES[platform]}-manylinux_2_{GLIBC_MINOR}"


_UV_LOOKUP = threading.Lock()


def uv_binary() -> str:
    """The uv shipped with the product (the `uv` package), else the one on PATH.

    One lookup at a time: uv's finder reads `sysconfig`, whose first read is not thread-safe
    (Python 3.11 publishes the dict before filling it), so two bakes starting together, as
    a server's build slots do, could get a TypeError."""
    with _UV_LOOKUP:
        return _find_uv()


@functools.cache
def _find_uv() -> str:
    from uv import find_uv_bin

    try:
        return find_uv_bin()
    except FileNotFoundError:
        on_path = shutil.which("uv")
        if on_path is None:
            raise ImageBakingException(
                "uv was not found: reinstall bakery (it depends on the uv package) or put uv "
                "on PATH."
            ) from None
        return on_path


def lock(
    spec: Spec,
    *,
    timeout: float = 600.0,
    find_links: Path | None = None,
    built: Mapping[str, LockedPackage] | None = None,
) -> Lock:
    """Resolve `spec` for its target platform and Python into one wheel per package.

    The execution builder passes the wheels it built from sdists as `find_links` (uv reads
    their metadata, so no package code runs here) and `built`: the sdist each of those
    packages is then locked as, by canonical name."""
    entries = _compile(spec, timeout, find_links).get("packages", [])
    if not entries:
        raise ImageBakingException(
            f"No requirement applies to {spec.platform} and Python {spec.python}: the "
            f"environment markers exclude every one of "
            f"{shorten(', '.join(spec.requirements), 160)}. Fix the markers, or the target "
            "platform and python; an image without packages is not baked."
        )
    tags = target_tags(spec.platform, spec.python)
    target = f"{spec.platform} and Python {spec.python}"
    built = built or {}
    packages = [
        built.get(canonicalize_name(entry["name"])) or choose_wheel(entry, tags, target)
        for entry in entries
    ]
    _check_hashes(packages, spec)
    packages.sort(key=lambda p: p.name)
    return Lock(
        platform=spec.platform, python=spec.python, packages=tuple(packages), kind=spec.kind
    )


def _compile(spec: Spec, timeout: float, find_links: Path | None = None) -> dict:
    command = [
        uv_binary(),
        "pip",
        "compile",
        "-",
        "--format=pylock.toml",
        f"--python-platform={uv_platform(spec.platform)}",
        f"--python-version={spec.python}",
        # Name an interpreter so uv skips discovery (which execs every python on PATH and took
        # ~10 s behind pyenv shims); the target version and platform override its markers.
        f"--python={sys.executable}",
        "--only-binary=:all:",
        "--no-header",
        "--no-config",
        "--no-progress",
        "--color=never",
        "--quiet",
    ]
    if spec.index_url:
        command.append(f"--default-index={spec.index_url}")
    command += [f"--index={url}" for url in spec.extra_index_urls]
    if find_links is not None:
        command.append(f"--find-links={find_links}")
    # A scratch cwd so no project's pyproject.toml or .python-version steers the resolution.
    with tempfile.TemporaryDirectory(prefix="bakery-lock-") as scratch:
        try:
            done = subprocess.run(
                command,
                input="\n".join(spec.requirements) + "\n",
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=scratch,
                env={**os.environ, "NO_COLOR": "1"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ImageBakingException(
                f"Resolving took longer than {timeout:.0f}s; check that the package index is "
                "reachable, or simplify the requirements.",
                kind=ErrorKind.UNAVAILABLE,
            ) from None
    if done.returncode != 0:
        raise _explain(done.stderr, spec)
    return tomllib.loads(done.stdout)


def _explain(stderr: str, spec: Spec) -> ImageBakingException:
    """Turn uv's report into a short message; uv's full text stays in `details`."""
    target = f"{spec.platform} and Python {spec.python}"
    no_wheel = sorted({m.group(1) for m in _NO_WHEEL.finditer(stderr)})
    not_found = sorted({m.group(1) for m in _NOT_FOUND.finditer(stderr)})
    if no_wheel:
        headline = (
            f"No wheel for {target} of: {shorten(', '.join(no_wheel), 200)}. The fast path "
            "installs wheels "
            "only (it never builds source distributions): pin a version that publishes a "
            "manylinux wheel, or drop the package."
        )
    elif not_found:
        headline = (
            f"Package not found on the index: {shorten(', '.join(not_found), 200)}. Check the "
            "spelling and "
            "the index URL."
        )
    else:
        headline = f"Could not resolve the requirements for {target}."
    unreachable = any(sign in stderr for sign in _UNREACHABLE)
    if no_wheel:
        return NoWheelError(
            "\n".join([headline, *_uv_reasons(stderr)]),
            packages=tuple(no_wheel),
            details=stderr.strip() or None,
        )
    return ImageBakingException(
        "\n".join([headline, *_uv_reasons(stderr)]),
        details=stderr.strip() or None,
        kind=ErrorKind.UNAVAILABLE if unreachable and not (no_wheel or not_found) else None,
    )


def _uv_reasons(stderr: str) -> list[str]:
    """uv's `error:` and `cause:` lines with their continuations; hints and warnings dropped."""
    kept: list[str] = []
    keeping = False
    for line in stderr.splitlines():
        stripped = line.strip()
        if line.startswith(("error:", "  cause:", "Caused by:")):
            keeping = True
            kept.append("  " + stripped.split(":", 1)[1].strip())
        elif keeping and line.startswith(" ") and stripped:
            kept.append("  " + stripped)
        else:
            keeping = False
    return kept


def target_tags(platform: str, python: str) -> dict[Tag, int]:
    """Wheel tags a CPython `python` ("3.11") on `platform` accepts, each with its rank
    (0 best: the order pip and uv prefer)."""
    arch = ARCHITECTURES[platform]
    platforms: list[str] = []
    for minor in range(GLIBC_MINOR, _OLDEST_GLIBC_MINOR[arch] - 1, -1):
        platforms.append(f"manylinux_2_{minor}_{arch}")
        if legacy := _LEGACY_MANYLINUX.get((minor, arch)):
            platforms.append(f"{legacy}_{arch}")
    version = tuple(int(part) for part in python.split("."))
    interpreter = python_tag(python)
    ordered = [
        *cpython_tags(version, abis=[interpreter], platforms=platforms),
        *compatible_tags(version, interpreter=interpreter, platforms=platforms),
    ]
    return {tag: rank for rank, tag in reversed(list(enumerate(ordered)))}


def choose_wheel(entry: dict, tags: dict[Tag, int], target: str) -> LockedPackage:
    """The best-ranked wheel of one PEP 751 `[[packages]]` entry for `tags`; `target`
    ("linux/amd64 and Python 3.11") names them in errors."""
    name = canonicalize_name(entry["name"])
    candidates: list[tuple[int, str, dict]] = []
    # A direct reference to a wheel (`pkg @ https://…/pkg-1.0-py3-none-any.whl`) is an
    # `archive`; spec validation lets no other kind of archive through.
    archive = [entry["archive"]] if "archive" in entry else []
    for wheel in [*entry.get("wheels", []), *archive]:
        if "url" not in wheel:
            raise ImageBakingException(
                f"The lock names {name} by local path, not URL; the bakery fetches wheels "
                "from an index only."
            )
        filename = wheel.get("name") or unquote(PurePosixPath(urlsplit(wheel["url"]).path).name)
        try:
            wheel_tags = parse_wheel_filename(filename)[3]
        except InvalidWheelFilename:
            continue
        ranks = [tags[t] for t in wheel_tags if t in tags]
        if ranks:
            candidates.append((min(ranks), filename, wheel))
    if not candidates:
        raise ImageBakingException(
            f"No wheel of {name}=={entry.get('version')} fits {target}; pin a version that "
            "publishes a manylinux wheel."
        )
    _, filename, wheel = min(candidates, key=lambda c: (c[0], c[1]))
    sha256 = wheel.get("hashes", {}).get("sha256")
    if not sha256:
        raise ImageBakingException(
            f"The index gave no sha256 for {filename}; the bakery only installs verified "
            "artifacts. Use an index that publishes hashes."
        )
    return LockedPackage(
        name=name,
        version=str(entry["version"]),
        url=wheel["url"],
        filename=filename,
        sha256=sha256,
        size=wheel.get("size"),
    )


def _check_hashes(packages: list[LockedPackage], spec: Spec) -> None:
    """A package pinned with `--hash` must resolve to one of its allowed artifacts."""
    for package in packages:
        allowed = spec.hashes.get(package.name)
        if allowed and package.sha256 not in allowed:
            raise ImageBakingException(
                f"{package.filename} (sha256 {package.sha256}) matches none of the --hash "
                f"values given for {package.name}; update the hashes or the pin."
            )
