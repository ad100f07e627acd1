"""Bake inputs: validated once, normalized, and named by a content id.

Every way of saying "these dependencies" (a `pypi` dict, a requirements file, a pyproject)
becomes the same `Spec`, so two callers asking for the same thing get the same `spec_id`
and therefore the same cached image. Nothing here runs package code: a pyproject whose
dependencies are dynamic is refused rather than built.
"""

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Literal

import blake3
from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bakery.errors import ImageBakingException

PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_PYTHON = "3.11"
BUILDER_VERSION = _dist_version("bakery")
"""Part of every spec id: a new builder may lay files out differently, so it must not reuse."""

_MIN_PYTHON_MINOR = 8
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CACHE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_PYTHON = re.compile(r"^3\.(\d+)(\.\d+)?$")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTIONS = ("-r", "--requirement", "-i", "--index-url", "--extra-index-url", "--hash")


class Spec(BaseModel):
    """Normalized bake inputs; `spec_id` names them.

    `hashes` maps a canonical package name to the sha256 digests a requirements file allows
    for it; the lock must pick one of them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requirements: tuple[str, ...]
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    hashes: dict[str, tuple[str, ...]] = {}
    platform: str = DEFAULT_PLATFORM
    python: str = DEFAULT_PYTHON
    base_image_digest: str
    builder_version: str = BUILDER_VERSION
    cache_name: str | None = None
    compression: Literal["gzip", "zstd"] = "gzip"
    source_date_epoch: int = Field(default=0, ge=0)
    """The image config's `created` time: it changes the image's bytes, so the id too."""

    @field_validator("requirements")
    @classmethod
    def _sorted_requirements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("no requirements: give at least one package")
        return tuple(sorted({_normalize(r) for r in value}))

    @field_validator("hashes")
    @classmethod
    def _sorted_hashes(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, digests in value.items():
            for digest in digests:
                if not _SHA256_HEX.match(digest):
                    raise ValueError(f"hash for {name} is not a sha256 hex digest: {digest!r}")
        return {canonicalize_name(k): tuple(sorted(set(v))) for k, v in sorted(value.items())}

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in PLATFORMS:
            raise ValueError(f"platform {value!r} is not supported; use one of {PLATFORMS}")
        return value

    @field_validator("python")
    @classmethod
    def _minor_python(cls, value: str) -> str:
        match = _PYTHON.match(value)
        if not match or int(match.group(1)) < _MIN_PYTHON_MINOR:
            raise ValueError(
                f"python {value!r} is not a supported version; give one like '3.11' "
                f"(3.{_MIN_PYTHON_MINOR} or newer)"
            )
        return f"3.{int(match.group(1))}"

    @field_validator("cache_name")
    @classmethod
    def _cache_name(cls, value: str | None) -> str | None:
        if value is not None and not _CACHE_NAME.match(value):
            raise ValueError(
                f"cache_name {value!r} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'"
            )
        return value

    @field_validator("base_image_digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not _DIGEST.match(value):
            raise ValueError(
                f"base image digest {value!r} is not 'sha256:<64 hex>'; "
                "resolve the base image to its digest first"
            )
        return value

    @property
    def python_tag(self) -> str:
        """The CPython tag of the target interpreter, e.g. `cp311`."""
        return python_tag(self.python)

    @property
    def spec_id(self) -> str:
        """blake3 hex of the canonical JSON of every field: same inputs, same id."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return blake3.blake3(canonical.encode()).hexdigest()


def python_tag(python: str) -> str:
    """`"3.11"` -> `"cp311"`: the tag wheels and layer keys use for a target Python."""
    return "cp" + python.replace(".", "")


def make_spec(
    *,
    pypi: Mapping[str, str] | None = None,
    requirements_file: str | Path | None = None,
    pyproject_toml: str | Path | None = None,
    base_image_digest: str,
    platform: str = DEFAULT_PLATFORM,
    python: str = DEFAULT_PYTHON,
    builder_version: str = BUILDER_VERSION,
    cache_name: str | None = None,
    compression: str = "gzip",
    source_date_epoch: int = 0,
) -> Spec:
    """Validate exactly one dependency source plus the target, and return its `Spec`."""
    given = [
        name
        for name, value in (
            ("pypi", pypi),
            ("requirements_file", requirements_file),
            ("pyproject_toml", pyproject_toml),
        )
        if value is not None
    ]
    if len(given) != 1:
        what = "none was given" if not given else f"got {' and '.join(given)}"
        raise ImageBakingException(
            "Give exactly one of pypi, requirements_file or pyproject_toml; " + what + "."
        )
    if pypi is not None:
        reqs = RequirementSet(requirements=[pypi_requirement(k, v) for k, v in pypi.items()])
    elif requirements_file is not None:
        reqs = read_requirements_file(Path(requirements_file))
    else:
        assert pyproject_toml is not None  # exactly one source was given
        reqs = read_pyproject(Path(pyproject_toml))
    try:
        spec = Spec(
            requirements=tuple(reqs.requirements),
            index_url=reqs.index_url,
            extra_index_urls=tuple(reqs.extra_index_urls),
            hashes={k: tuple(v) for k, v in reqs.hashes.items()},
            platform=platform,
            python=python,
            base_image_digest=base_image_digest,
            builder_version=builder_version,
            cache_name=cache_name,
            compression=compression,
            source_date_epoch=source_date_epoch,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ImageBakingException(f"Invalid bake inputs: {problems}.") from None
    if reqs.requires_python and Version(spec.python) not in SpecifierSet(reqs.requires_python):
        raise ImageBakingException(
            f"{pyproject_toml} requires Python {reqs.requires_python} but the target is "
            f"{spec.python}; pick a matching python."
        )
    return spec


def pypi_requirement(name: str, value: str) -> str:
    """One `pypi={name: value}` entry as a requirement string.

    The value is a specifier (`">=2"`), empty, a bare version (`"2.31.0"` means `==2.31.0`),
    optionally followed by `; <marker>`.
    """
    if not isinstance(value, str):
        raise ImageBakingException(
            f"pypi value for {name!r} must be a string such as '>=2.0' or '', not {value!r}."
        )
    key = _parse(name, f"package name {name!r}")
    if key.specifier or key.marker or key.url:
        raise ImageBakingException(
            f"pypi key {name!r} must be a package name (extras allowed, e.g. 'requests[socks]'); "
            "put version constraints and markers in the value."
        )
    specifier, _, marker = value.partition(";")
    specifier = specifier.strip()
    try:
        specifier = f"=={Version(specifier)}" if specifier and specifier[0].isdigit() else specifier
        SpecifierSet(specifier)
    except (InvalidVersion, InvalidSpecifier):
        raise ImageBakingException(
            f"Invalid version specifier {value!r} for {name!r}: use e.g. '>=2.0', '==2.31.0', "
            "'2.31.0' or '' for any version."
        ) from None
    text = f"{name}{specifier}" + (f"; {marker.strip()}" if marker.strip() else "")
    return _normalize(text, f"requirement for {name!r} ({value!r})")


@dataclass
class RequirementSet:
    """What a dependency source says before it is frozen into a `Spec`."""

    requirements: list[str] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    hashes: dict[str, list[str]] = field(default_factory=dict)
    requires_python: str | None = None


def read_requirements_file(path: Path) -> RequirementSet:
    """Read a pip requirements file, following `-r` includes relative to the including file."""
    result = RequirementSet()
    _read_requirements(path, result, ())
    return result


def _read_requirements(path: Path, into: RequirementSet, stack: tuple[Path, ...]) -> None:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise ImageBakingException(f"Requirements files include each other in a cycle: {chain}.")
    text = _read_text(path, "requirements file")
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        requirement, options = _split_line(line)
        if requirement:
            _add_requirement(into, requirement, options, where)
        else:
            _apply_options(into, options, path, (*stack, resolved), where)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with `\\` continuations joined and comments removed, with their first line number."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        line = _COMMENT.sub("", "".join([*pending, raw])).strip()
        pending = []
        if line:
            lines.append((start, line))
    if pending and (line := _COMMENT.sub("", "".join(pending)).strip()):
        lines.append((start, line))
    return lines


def _split_line(line: str) -> tuple[str, list[str]]:
    """Split a line into its requirement and its options, as pip does: at the first `-` token."""
    words = line.split(" ")
    for index, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:index]).strip(), shlex.split(" ".join(words[index:]))
    return line, []


def _add_requirement(into: RequirementSet, text: str, options: list[str], where: str) -> None:
    requirement = _parse(text, f"requirement {text!r} at {where}")
    into.requirements.append(_normalize(text, where))
    for option, value in _option_pairs(options, where):
        if option != "--hash":
            raise ImageBakingException(
                f"Unsupported option {option} after a requirement at {where}: only --hash is."
            )
        algorithm, _, digest = value.partition(":")
        if algorithm != "sha256" or not _SHA256_HEX.match(digest):
            raise ImageBakingException(
                f"Unsupported hash {value!r} at {where}: give --hash=sha256:<64 hex digits>."
            )
        into.hashes.setdefault(canonicalize_name(requirement.name), []).append(digest)


def _apply_options(
    into: RequirementSet, options: list[str], path: Path, stack: tuple[Path, ...], where: str
) -> None:
    for option, value in _option_pairs(options, where):
        if option in ("-r", "--requirement"):
            _read_requirements(path.parent / value, into, stack)
        elif option in ("-i", "--index-url"):
            if into.index_url not in (None, value):
                raise ImageBakingException(
                    f"Two different --index-url values ({into.index_url}, {value}) at {where}: "
                    "keep one and pass the others as --extra-index-url."
                )
            into.index_url = value
        elif option == "--extra-index-url":
            if value not in into.extra_index_urls:
                into.extra_index_urls.append(value)
        else:
            raise ImageBakingException(f"{option} at {where} must follow a requirement.")


def _option_pairs(options: list[str], where: str) -> list[tuple[str, str]]:
    """`--opt=value`, `--opt value` and `-ovalue` forms as (option, value) pairs."""
    pairs: list[tuple[str, str]] = []
    words = iter(options)
    for word in words:
        if word.startswith("--") and "=" in word:
            option, value = word.split("=", 1)
        elif not word.startswith("--") and len(word) > 2:
            option, value = word[:2], word[2:].lstrip("=")
        else:
            option, value = word, ""
        if option not in _OPTIONS:
            raise ImageBakingException(
                f"Unsupported option {option} at {where}: the bakery understands -r, "
                "--index-url, --extra-index-url and --hash (editable and local installs "
                "need an execution builder)."
            )
        value = value or next(words, "")
        if not value:
            raise ImageBakingException(f"Option {option} at {where} needs a value.")
        pairs.append((option, value))
    return pairs


def read_pyproject(path: Path) -> RequirementSet:
    """`[project].dependencies` of a pyproject.toml, read without running its build backend."""
    try:
        data = tomllib.loads(_read_text(path, "pyproject.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise ImageBakingException(f"{path} is not valid TOML: {exc}.") from None
    project = data.get("project")
    if not isinstance(project, dict):
        raise ImageBakingException(f"{path} has no [project] table; add [project].dependencies.")
    if "dependencies" in project.get("dynamic", []):
        raise ImageBakingException(
            f"{path} declares its dependencies as dynamic; the bakery does not run build "
            "backends. List them in [project].dependencies or use a requirements file."
        )
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ImageBakingException(f"{path}: [project].dependencies must be a list of strings.")
    requires_python = project.get("requires-python")
    try:
        SpecifierSet(requires_python or "")
    except InvalidSpecifier:
        raise ImageBakingException(
            f"{path}: [project].requires-python {requires_python!r} is not a valid specifier."
        ) from None
    return RequirementSet(
        requirements=[_normalize(d, f"{path}: {d!r}") for d in dependencies],
        requires_python=requires_python,
    )


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImageBakingException(f"The {what} {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageBakingException(f"Cannot read the {what} {path}: {exc}.") from None


def _parse(text: str, what: str) -> Requirement:
    try:
        return Requirement(text)
    except (InvalidRequirement, InvalidMarker) as exc:
        raise ImageBakingException(f"Invalid {what}: {exc}.") from None


def _normalize(text: str, what: str = "requirement") -> str:
    """One spelling per requirement: canonical name, sorted extras, normalized specifier."""
    requirement = _parse(text, what)
    requirement.name = canonicalize_name(requirement.name)
    requirement.extras = {canonicalize_name(e) for e in requirement.extras}
    return str(requirement)
