"""Bake inputs: validated once, normalized, and named by a content id.

Every way of saying "these dependencies" (a `pypi` dict, a requirements file, a pyproject)
becomes the same `Spec`, so two callers asking for the same thing get the same `spec_id`
and therefore the same cached image. Nothing here runs package code: a pyproject whose
dependencies are dynamic is refused rather than built.

Every input is untrusted text that ends up on uv's standard input, one requirement a line:
so no requirement, index URL or option may carry a non-printable character (a newline in a
URL would smuggle in `--index-url` and another requirement), and every refusal is an
ImageBakingException whose message quotes the input cut short.
"""

import json
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

import blake3
from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bakery import __version__
from bakery.errors import ImageBakingException, quoted, shorten
from bakery.platforms import DEFAULT_PLATFORM, PLATFORMS

DEFAULT_PYTHON = "3.11"
BUILDER_VERSION = __version__
"""Part of every spec id: a new builder may lay files out differently, so it must not reuse."""

MAX_FILE_BYTES = 4 << 20
"""Largest requirements file or pyproject.toml read: far above any real one."""
MAX_INCLUDE_DEPTH = 32
"""Deepest chain of `-r` includes followed."""
MAX_LINE_CHARS = 8192
"""Longest requirement, URL or option value: room for a signed URL, none for a runaway."""

_MIN_PYTHON_MINOR = 8
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CACHE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CUDA = re.compile(r"\d{1,3}(\.\d{1,3}){0,2}")
_PYTHON = re.compile(r"3\.(\d{1,3})(\.\d{1,4})?")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTIONS = ("-r", "--requirement", "-i", "--index-url", "--extra-index-url", "--hash")
_URL_SCHEMES = ("https", "http")
_DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{1,127}")


SPEC_FORMAT = 3
"""Version of the Spec's fields and their meaning; part of every spec id (2: kind, format;
3: conda match specs, channels and locked packages, Debian system packages)."""

SpecKind = Literal["pypi", "conda"]
"""The ecosystem a spec is locked in: "conda" when it names conda packages (PyPI
requirements then go on top of the conda env); built artifacts come next."""


@dataclass(frozen=True)
class Spec:
    """Normalized bake inputs; `spec_id` names them.

    `hashes` maps a canonical package name to the sha256 digests a requirements file allows
    for it; the lock must pick one of them. Construction validates and normalizes every
    field (a plain dataclass: the bake's start-up path imports no validation framework).
    """

    requirements: tuple[str, ...]
    base_image_digest: str
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    platform: str = DEFAULT_PLATFORM
    python: str = DEFAULT_PYTHON
    builder_version: str = BUILDER_VERSION
    cache_name: str | None = None
    compression: Literal["gzip", "zstd"] = "gzip"
    source_date_epoch: int = 0
    """The image config's `created` time: it changes the image's bytes, so the id too."""
    kind: SpecKind = "pypi"
    format: int = SPEC_FORMAT
    conda: tuple[str, ...] = ()
    """Conda match specs (`numpy 1.26.*`), sorted; solved by rattler."""
    channels: tuple[str, ...] = ()
    """Conda channels, highest priority first (strict priority)."""
    conda_locked: str | None = None
    """A given conda lock (canonical JSON of its packages for the platform): used as is."""
    cuda: str | None = None
    """The CUDA driver version the image's hosts have (`__cuda` for the solve), if any."""
    system_packages: tuple[str, ...] = ()
    """Debian packages apt installs in BuildKit under the package layers (sorted, unique)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name, check in _FIELD_CHECKS.items():
            try:
                object.__setattr__(self, name, check(getattr(self, name)))
            except (ValueError, TypeError) as exc:
                problems.append(f"{name}: {exc}")
        if not problems:
            problems = _kind_problems(self)
        if problems:
            raise ImageBakingException(f"Invalid bake inputs: {shorten('; '.join(problems), 300)}.")

    @property
    def python_tag(self) -> str:
        """The CPython tag of the target interpreter, e.g. `cp311`."""
        return python_tag(self.python)

    @property
    def spec_id(self) -> str:
        """blake3 hex of the canonical JSON of every field: same inputs, same id."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return blake3.blake3(canonical.encode()).hexdigest()


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple | list):
        raise TypeError(f"expected a tuple of strings, got {type(value).__name__}")
    return tuple(_text(item) for item in value)


def _requirements(value: object) -> tuple[str, ...]:
    return tuple(sorted({_normalize(r) for r in _texts(value)}))


def _kind_problems(spec: "Spec") -> list[str]:
    """What the fields' kind requires: a PyPI spec names requirements; a conda spec names
    match specs or a lock, and channels to find them in."""
    if spec.kind == "pypi":
        if not spec.requirements:
            return ["requirements: no requirements: give at least one package"]
        if spec.conda or spec.channels or spec.conda_locked or spec.cuda:
            return ["kind: a pypi spec has no conda specs, channels, conda lock or cuda"]
        return []
    if not spec.conda and spec.conda_locked is None:
        return ["conda: no conda packages: give at least one match spec, or a conda lock"]
    if spec.conda and spec.conda_locked is not None:
        return ["conda: give match specs or a conda lock, not both"]
    if not spec.channels:
        return ["channels: no conda channel to solve from"]
    return []


def _conda_specs(value: object) -> tuple[str, ...]:
    from bakery.conda.specs import normalize_match_spec

    return tuple(sorted({normalize_match_spec(text) for text in _texts(value)}))


def _channels(value: object) -> tuple[str, ...]:
    from bakery.conda.channels import normalize_channel

    channels = tuple(normalize_channel(text) for text in _texts(value))
    if len(set(channels)) != len(channels):
        raise ValueError(f"a channel is listed twice in {quoted(list(channels))}")
    return channels


def _cuda(value: object) -> str | None:
    text = _optional_text(value)
    if text is not None and not _CUDA.fullmatch(text):
        raise ValueError(f"cuda {quoted(text)} is not a CUDA version such as '12.2'")
    return text


def _conda_locked(value: object) -> str | None:
    text = _optional_text(value)
    if text is not None and not isinstance(json.loads(text), list):
        raise ValueError("expected the JSON list of locked conda packages")
    return text


def _index_url(value: object) -> str | None:
    text = _optional_text(value)
    return text if text is None else _check_index_url(text, "index_url")


def _extra_index_urls(value: object) -> tuple[str, ...]:
    return tuple(_check_index_url(url, "extra index URL") for url in _texts(value))


def _hashes(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    for name, digests in value.items():
        for digest in _texts(digests):
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    f"hash for {quoted(name)} is not a sha256 hex digest: {quoted(digest)}"
                )
    return {canonicalize_name(_text(k)): tuple(sorted(set(v))) for k, v in sorted(value.items())}


def _platform(value: object) -> str:
    if _text(value) not in PLATFORMS:
        raise ValueError(f"platform {quoted(value)} is not supported; use one of {PLATFORMS}")
    return value  # type: ignore[return-value]  # checked to be one of PLATFORMS


def _python(value: object) -> str:
    match = _PYTHON.fullmatch(_text(value))
    if not match or int(match.group(1)) < _MIN_PYTHON_MINOR:
        raise ValueError(
            f"python {quoted(value)} is not a supported version; give one like '3.11' "
            f"(3.{_MIN_PYTHON_MINOR} or newer)"
        )
    return f"3.{int(match.group(1))}"


def _cache_name(value: object) -> str | None:
    text = _optional_text(value)
    if text is not None and not _CACHE_NAME.fullmatch(text):
        raise ValueError(
            f"cache_name {quoted(text)} must be 1-64 characters of a-z, 0-9, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return text


def _digest(value: object) -> str:
    if not _DIGEST.fullmatch(_text(value)):
        raise ValueError(
            f"base image digest {quoted(value)} is not 'sha256:<64 hex>'; "
            "resolve the base image to its digest first"
        )
    return value  # type: ignore[return-value]  # checked to be a digest string


def _compression(value: object) -> str:
    if value not in ("gzip", "zstd"):
        raise ValueError(f"compression {quoted(value)} is not 'gzip' or 'zstd'")
    return value


def _epoch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError("must be 0 or more (seconds since 1970)")
    return value


def _kind(value: object) -> str:
    if value not in ("pypi", "conda"):
        raise ValueError(f"kind {quoted(value)} is not supported; 'pypi' and 'conda' are")
    return value


def _format(value: object) -> int:
    if value != SPEC_FORMAT:
        raise ValueError(f"format {quoted(value)} is not this bakery's spec format {SPEC_FORMAT}")
    return value


def _system_packages(value: object) -> tuple[str, ...]:
    names = _texts(value)
    for name in names:
        if not _DEBIAN_PACKAGE.fullmatch(name):
            raise ValueError(
                f"system package {quoted(name)} is not a Debian package name (lowercase "
                "letters, digits, '+', '-', '.'; at least two characters)"
            )
    return tuple(sorted(set(names)))


_FIELD_CHECKS = {
    "requirements": _requirements,
    "base_image_digest": _digest,
    "index_url": _index_url,
    "extra_index_urls": _extra_index_urls,
    "hashes": _hashes,
    "platform": _platform,
    "python": _python,
    "builder_version": _text,
    "cache_name": _cache_name,
    "compression": _compression,
    "source_date_epoch": _epoch,
    "kind": _kind,
    "format": _format,
    "conda": _conda_specs,
    "channels": _channels,
    "conda_locked": _conda_locked,
    "cuda": _cuda,
    "system_packages": _system_packages,
}
"""Each field's check: returns the normalized value, raises ValueError/TypeError to refuse."""


def python_tag(python: str) -> str:
    """`"3.11"` -> `"cp311"`: the tag wheels and layer keys use for a target Python."""
    return "cp" + python.replace(".", "")


def make_spec(
    *,
    pypi: Mapping[str, str] | None = None,
    requirements_file: str | Path | None = None,
    pyproject_toml: str | Path | None = None,
    conda: Mapping[str, str] | None = None,
    environment: str | Path | None = None,
    conda_lock: str | Path | None = None,
    channels: Sequence[str] | None = None,
    conda_python: str | None = None,
    cuda: str | None = None,
    base_image_digest: str,
    platform: str = DEFAULT_PLATFORM,
    python: str = DEFAULT_PYTHON,
    builder_version: str = BUILDER_VERSION,
    cache_name: str | None = None,
    compression: str = "gzip",
    source_date_epoch: int = 0,
    system_packages: tuple[str, ...] = (),
) -> Spec:
    """Validate the dependency sources plus the target, and return their `Spec`: at most one
    PyPI source (pypi, requirements_file, pyproject_toml) and at most one conda source
    (conda, environment, conda_lock); an environment.yml brings its own `pip:` section.
    `conda_python` (the python asked for) becomes a `python X.Y.*` match spec; `cuda` is the
    `__cuda` virtual package a conda solve may assume."""
    pypi_sources = _given(
        pypi=pypi, requirements_file=requirements_file, pyproject_toml=pyproject_toml
    )
    conda_sources = _given(conda=conda, environment=environment, conda_lock=conda_lock)
    if len(pypi_sources) > 1 or len(conda_sources) > 1 or not pypi_sources + conda_sources:
        given = pypi_sources + conda_sources
        what = "none was given" if not given else f"got {' and '.join(given)}"
        raise ImageBakingException(
            "Give exactly one of pypi, requirements_file or pyproject_toml, exactly one of "
            "conda, environment or conda_lock, or one of each; " + what + "."
        )
    for name, value in (("channels", channels), ("cuda", cuda)):
        if value is not None and not conda_sources:
            raise ImageBakingException(
                f"{name}= is for conda packages, but no conda source (conda, environment or "
                "conda_lock) was given."
            )
    if environment is not None and pypi_sources:
        raise ImageBakingException(
            f"Give environment or {pypi_sources[0]}, not both: put the PyPI packages in the "
            "environment's `pip:` section."
        )
    reqs = RequirementSet()
    if pypi is not None:
        reqs = RequirementSet(requirements=pypi_requirements(pypi))
    elif requirements_file is not None:
        reqs = read_requirements_file(input_path(requirements_file, "requirements_file"))
    elif pyproject_toml is not None:
        reqs = read_pyproject(input_path(pyproject_toml, "pyproject_toml"))
    conda_fields: dict[str, object] = {}
    if conda_sources:
        from bakery.conda.specs import conda_source

        source = conda_source(
            conda=conda,
            environment=environment,
            conda_lock=conda_lock,
            channels=channels,
            platform=platform,
            python=conda_python,
        )
        if source.pip:
            reqs = RequirementSet(requirements=list(source.pip))
        conda_fields = {
            "kind": "conda",
            "conda": source.specs,
            "channels": source.channels,
            "conda_locked": source.locked,
            "cuda": cuda,
        }
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
        compression=compression,  # type: ignore[arg-type]  # Spec checks it
        source_date_epoch=source_date_epoch,
        system_packages=system_packages,
        **conda_fields,  # type: ignore[arg-type]  # Spec checks them
    )
    # A conda env's python is known once solved; the target Python here is the base's.
    requires = reqs.requires_python if spec.kind == "pypi" else None
    if requires and Version(spec.python) not in SpecifierSet(requires):
        raise ImageBakingException(
            f"{shorten(str(pyproject_toml))} requires Python {quoted(reqs.requires_python)} but "
            f"the target is {spec.python}; pick a matching python."
        )
    return spec


def _given(**sources: object) -> list[str]:
    """The names of the sources that were given (not None)."""
    return [name for name, value in sources.items() if value is not None]


def input_path(value: object, name: str) -> Path:
    """A `requirements_file=` / `pyproject_toml=` argument as a Path, or a refusal."""
    if not isinstance(value, str | os.PathLike) or not isinstance(os.fspath(value), str):
        raise ImageBakingException(
            f"{name} must be a path (a str or pathlib.Path), not {quoted(value)}."
        )
    text = os.fspath(value)
    if not text.strip():
        raise ImageBakingException(f"{name} is empty; give the path of the file.")
    one_line(text, f"{name} {quoted(text)}")
    return Path(text)


def one_line(text: str, what: str, *, tabs: bool = False) -> str:
    """`text`, if it is at most MAX_LINE_CHARS of printable characters (tabs allowed with
    `tabs`); otherwise refused, naming the first line break, NUL, escape, bidi override..."""
    if len(text) > MAX_LINE_CHARS:
        raise ImageBakingException(
            f"{what[:1].upper()}{what[1:]} is {len(text)} characters long; the limit is "
            f"{MAX_LINE_CHARS}."
        )
    if text.isprintable():
        return text
    for position, char in enumerate(text, 1):
        if not char.isprintable() and not (tabs and char == "\t"):
            raise ImageBakingException(
                f"{what[:1].upper()}{what[1:]} contains the non-printable character "
                f"U+{ord(char):04X} at position {position}; requirements, URLs and options "
                "must be printable text on one line."
            )
    return text


def pypi_requirements(pypi: object) -> list[str]:
    """The requirement strings of a `pypi=` dict."""
    if not isinstance(pypi, Mapping):
        raise ImageBakingException(
            "pypi must be a dict of package name to version, e.g. {'flask': '>=2'}, not "
            f"{type(pypi).__name__} {quoted(pypi)}."
        )
    return [pypi_requirement(name, value) for name, value in pypi.items()]


def pypi_requirement(name: object, value: object) -> str:
    """One `pypi={name: value}` entry as a requirement string.

    The value is a specifier (`">=2"`), empty, a bare version (`"2.31.0"` means `==2.31.0`),
    or a direct link to a wheel (`"@ https://host/pkg-1.0-py3-none-any.whl"`), optionally
    followed by `; <marker>` (after a space, for a link).
    """
    if not isinstance(name, str):
        raise ImageBakingException(
            f"pypi keys must be package names (strings), not {quoted(name)}."
        )
    if not isinstance(value, str):
        raise ImageBakingException(
            f"pypi value for {quoted(name)} must be a string such as '>=2.0' or '', not "
            f"{quoted(value)}."
        )
    one_line(name, f"pypi key {quoted(name)}")
    one_line(value, f"pypi value {quoted(value)} for {quoted(name)}", tabs=True)
    key = parse_requirement(name, f"package name {quoted(name)}")
    if key.specifier or key.marker or key.url:
        raise ImageBakingException(
            f"pypi key {quoted(name)} must be a package name (extras allowed, e.g. "
            "'requests[socks]'); put version constraints and markers in the value."
        )
    entry = f"requirement for {quoted(name)} ({quoted(value)})"
    if value.strip().startswith("@"):  # a direct reference: "@ URL[ ; marker]"
        return _normalize(f"{name} {value.strip()}", entry)
    specifier, _, marker = value.partition(";")
    specifier = specifier.strip()
    try:
        specifier = f"=={Version(specifier)}" if specifier and specifier[0].isdigit() else specifier
        SpecifierSet(specifier)
    except (InvalidVersion, InvalidSpecifier):
        raise ImageBakingException(
            f"Invalid version specifier {quoted(value)} for {quoted(name)}: use e.g. '>=2.0', "
            "'==2.31.0', '2.31.0', '' for any version, or '@ https://…/pkg.whl'."
        ) from None
    text = f"{name}{specifier}" + (f"; {marker.strip()}" if marker.strip() else "")
    return _normalize(text, entry)


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
    _read_requirements(path, result, (), set())
    return result


def _read_requirements(
    path: Path, into: RequirementSet, stack: tuple[Path, ...], done: set[Path]
) -> None:
    """Read `path` into `into`; `stack` is the chain of files including it, `done` the files
    read completely (reading one again adds nothing, so it is skipped: diamonds of includes
    stay linear)."""
    resolved = Path(os.path.realpath(path))
    if resolved in stack:
        cycle = [*stack[stack.index(resolved) :], resolved]
        raise ImageBakingException(
            "Requirements files include each other in a cycle: "
            f"{shorten(' -> '.join(p.name for p in cycle), 200)} (in "
            f"{shorten(str(resolved.parent))})."
        )
    if resolved in done:
        return
    if len(stack) > MAX_INCLUDE_DEPTH:
        raise ImageBakingException(
            f"Requirements files nest more than {MAX_INCLUDE_DEPTH} -r includes deep (at "
            f"{shorten(str(path))}); flatten them."
        )
    text = _read_text(path, "requirements file")
    for number, line in _logical_lines(text):
        where = f"{shorten(str(path))}:{number}"
        one_line(line, f"line {where}", tabs=True)
        requirement, options = _split_line(line, where)
        if requirement:
            _add_requirement(into, requirement, options, where)
        else:
            _apply_options(into, options, path, (*stack, resolved), done, where)
    done.add(resolved)


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


def _split_line(line: str, where: str) -> tuple[str, list[str]]:
    """Split a line into its requirement and its options, as pip does: at the first `-` token."""
    words = line.split(" ")
    for index, word in enumerate(words):
        if word.startswith("-"):
            try:
                options = shlex.split(" ".join(words[index:]))
            except ValueError as exc:  # an unclosed quote
                raise ImageBakingException(
                    f"Cannot split the options at {where} ({exc}): {quoted(line)}; close the quote."
                ) from None
            return " ".join(words[:index]).strip(), options
    return line, []


def _add_requirement(into: RequirementSet, text: str, options: list[str], where: str) -> None:
    what = f"requirement {quoted(text)} at {where}"
    requirement = parse_requirement(text, what)
    into.requirements.append(_normalize(text, what))
    for option, value in _option_pairs(options, where):
        if option != "--hash":
            raise ImageBakingException(
                f"Unsupported option {option} after a requirement at {where}: only --hash is."
            )
        algorithm, _, digest = value.partition(":")
        if algorithm != "sha256" or not _SHA256_HEX.fullmatch(digest):
            raise ImageBakingException(
                f"Unsupported hash {quoted(value)} at {where}: give --hash=sha256:<64 hex digits>."
            )
        into.hashes.setdefault(canonicalize_name(requirement.name), []).append(digest)


def _apply_options(
    into: RequirementSet,
    options: list[str],
    path: Path,
    stack: tuple[Path, ...],
    done: set[Path],
    where: str,
) -> None:
    for option, value in _option_pairs(options, where):
        if option in ("-r", "--requirement"):
            _read_requirements(path.parent / value, into, stack, done)
        elif option in ("-i", "--index-url"):
            _check_index_url(value, f"{option} at {where}")
            if into.index_url not in (None, value):
                raise ImageBakingException(
                    f"Two different --index-url values ({quoted(into.index_url)}, "
                    f"{quoted(value)}) at {where}: keep one and pass the others as "
                    "--extra-index-url."
                )
            into.index_url = value
        elif option == "--extra-index-url":
            _check_index_url(value, f"{option} at {where}")
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
                f"Unsupported option {shorten(option, 40)} at {where}: the bakery understands "
                "-r, --index-url, --extra-index-url and --hash (editable and local installs "
                "need an execution builder)."
            )
        value = value or next(words, "")
        if not value:
            raise ImageBakingException(f"Option {option} at {where} needs a value.")
        pairs.append((option, one_line(value, f"the value of {option} at {where}")))
    return pairs


def read_pyproject(path: Path) -> RequirementSet:
    """`[project].dependencies` of a pyproject.toml, read without running its build backend."""
    shown = shorten(str(path))
    try:
        data = tomllib.loads(_read_text(path, "pyproject.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise ImageBakingException(f"{shown} is not valid TOML: {shorten(str(exc))}.") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ImageBakingException(
            f"{shown} nests arrays or tables too deeply to be read; is it a pyproject.toml?"
        ) from None
    project = data.get("project")
    if not isinstance(project, dict):
        raise ImageBakingException(f"{shown} has no [project] table; add [project].dependencies.")
    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list) or not all(isinstance(d, str) for d in dynamic):
        raise ImageBakingException(f"{shown}: [project].dynamic must be a list of strings.")
    if "dependencies" in dynamic:
        raise ImageBakingException(
            f"{shown} declares its dependencies as dynamic; the bakery does not run build "
            "backends. List them in [project].dependencies or use a requirements file."
        )
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ImageBakingException(f"{shown}: [project].dependencies must be a list of strings.")
    requires_python = project.get("requires-python")
    if requires_python is not None:
        what = f"{shown}: [project].requires-python {quoted(requires_python)}"
        if not isinstance(requires_python, str):
            raise ImageBakingException(f"{what} must be a string such as '>=3.10'.")
        try:
            SpecifierSet(one_line(requires_python, what))
        except InvalidSpecifier:
            raise ImageBakingException(f"{what} is not a valid version specifier.") from None
    requirements = []
    for dependency in dependencies:
        what = f"{shown}: dependency {quoted(dependency)}"
        requirements.append(_normalize(one_line(dependency, what, tabs=True), what))
    return RequirementSet(requirements=requirements, requires_python=requires_python)


def _read_text(path: Path, what: str) -> str:
    """The text of a regular file: a pipe or device is refused, not read (it could block
    forever or never end), and so is a file above MAX_FILE_BYTES or not in UTF-8."""
    shown = shorten(str(path))
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ImageBakingException(f"The {what} {shown} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise ImageBakingException(f"Cannot read the {what} {shown}: {_reason(exc)}.") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ImageBakingException(
                f"The {what} {shown} is not a regular file (a directory, pipe or device); "
                "give the path of the file itself."
            )
        data = os.read(descriptor, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImageBakingException(f"Cannot read the {what} {shown}: {_reason(exc)}.") from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:
        raise ImageBakingException(
            f"The {what} {shown} is larger than {MAX_FILE_BYTES >> 20} MiB; is it the right file?"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImageBakingException(
            f"The {what} {shown} is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8."
        ) from None


def _reason(error: Exception) -> str:
    return shorten(getattr(error, "strerror", None) or str(error))


def parse_requirement(text: str, what: str) -> Requirement:
    """`text` as a PEP 508 requirement, or an ImageBakingException about `what`."""
    try:
        return Requirement(text)
    except (InvalidRequirement, InvalidMarker, InvalidSpecifier, InvalidVersion) as exc:
        # packaging's message repeats the whole input under its first line: keep that line.
        reason = str(exc).splitlines()[0] if str(exc) else "not a PEP 508 requirement"
        raise ImageBakingException(f"Invalid {what}: {shorten(reason, 120)}.") from None


def _normalize(text: str, what: str = "requirement") -> str:
    """One spelling per requirement: canonical name, sorted extras, normalized specifier;
    and nothing in it that could break uv's one-requirement-a-line input."""
    requirement = parse_requirement(one_line(text, what, tabs=True), what)
    if any(not specifier.version for specifier in requirement.specifier):
        raise ImageBakingException(f"Invalid {what}: '===' needs a version after it.")
    requirement.name = canonicalize_name(requirement.name)
    requirement.extras = {canonicalize_name(e) for e in requirement.extras}
    normalized = one_line(str(requirement), what)
    if requirement.url is not None:
        _check_wheel_url(requirement.name, requirement.url, what)
    return normalized


def _check_wheel_url(name: str, url: str, what: str) -> None:
    """A direct reference must be an http(s) link to a wheel of the package it names: the
    bakery installs wheels only, never builds a source archive or a VCS checkout."""
    try:
        parts = urlsplit(url)
        wheel_name = parse_wheel_filename(unquote(PurePosixPath(parts.path).name))[0]
        usable = parts.scheme in _URL_SCHEMES and bool(parts.netloc)
    except ValueError:  # not a URL, or not a wheel's file name (InvalidWheelFilename)
        usable = False
    if not usable:
        raise ImageBakingException(
            f"Invalid {what}: a direct reference must be an http(s) link to a wheel "
            "(…/name-version-tags.whl); the bakery installs wheels, never source archives, "
            "VCS checkouts or local paths."
        )
    if canonicalize_name(wheel_name) != name:
        raise ImageBakingException(
            f"Invalid {what}: the link is a wheel of {wheel_name}, not of {name}."
        )


def _check_index_url(url: str, what: str) -> str:
    """An index URL uv can read and the bakery can download wheels from: http(s)."""
    one_line(url, f"{what} {quoted(url)}")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in _URL_SCHEMES or not parts.netloc:
        raise ImageBakingException(
            f"{what[:1].upper()}{what[1:]} {quoted(url)} is not an http(s) URL of a package "
            "index, e.g. https://pypi.org/simple."
        )
    return url
