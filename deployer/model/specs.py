"""Deployment specs: YAML files of `AppDeployer` parameters, several documents per file.

Like Prefect's deployment specs, one file can describe many apps, separated by `---`. Each
document may add `code:` (arguments for `package_code`) and `bake:` (arguments for
`bake_image`), meaning "package / bake this before deploying". Loading validates everything,
all documents at once, so a typo in the third app is reported before the first is deployed;
it never bakes or packages. Relative paths are resolved against the spec file's directory.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from deployer.exceptions import AppConfigError
from deployer.model.config import AppConfig
from deployer.orchestration.graph import deploy_order
from packager import PackagedCode

_SECTIONS = ("code", "bake")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `package_code` / `bake_image`."""
        return self.model_dump(exclude_none=True)


class CodeSection(_Section):
    """`package_code` arguments; `src_paths` are absolute, existing directories."""

    src_paths: list[str]
    suffixes: list[str] | None = None

    @field_validator("src_paths")
    @classmethod
    def _directories(cls, paths: list[str]) -> list[str]:
        if not paths:
            raise ValueError("src_paths is empty; name at least one directory, e.g. ['./src']")
        for path in paths:
            if not Path(path).is_dir():
                raise ValueError(f"{path} is not a directory")
        return paths

    @field_validator("suffixes")
    @classmethod
    def _suffixes(cls, suffixes: list[str] | None) -> list[str] | None:
        for suffix in suffixes or ():
            if not suffix.startswith(".") or len(suffix) < 2:
                raise ValueError(f"suffix {suffix!r} must start with '.', e.g. '.py'")
        return suffixes


class BakeSection(_Section):
    """`bake_image` arguments: exactly one of `pypi`, `requirements_file`, `pyproject_toml`."""

    pypi: dict[str, str] | None = None
    requirements_file: str | None = None
    pyproject_toml: str | None = None
    python: str | None = None
    base_image: str | None = None

    @field_validator("pypi", mode="before")
    @classmethod
    def _pypi(cls, value: object) -> object:
        """`flask:` with no version in YAML is None; it means any version, like ""."""
        if isinstance(value, Mapping):
            return {name: "" if spec is None else spec for name, spec in value.items()}
        return value

    @field_validator("requirements_file", "pyproject_toml")
    @classmethod
    def _file(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> "BakeSection":
        sources = ("pypi", "requirements_file", "pyproject_toml")
        given = [name for name in sources if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of pypi, requirements_file or pyproject_toml"
                + (f", not {' and '.join(given)}" if given else "")
            )
        return self


_S = TypeVar("_S", CodeSection, BakeSection)


@dataclass(frozen=True)
class DeploymentSpec:
    """One document of a spec file: the app's config, and what to package and bake first.

    `config.code_package` is None when `code` is set, and `config.image` None when `bake` is:
    the deployer fills them in with `config.replace(...)` after packaging and baking.
    """

    path: Path
    document: int
    config: AppConfig
    code: CodeSection | None = None
    bake: BakeSection | None = None

    @property
    def name(self) -> str:
        return self.config.name


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys instead of silently keeping the last one."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_specs(path: str | Path) -> list[DeploymentSpec]:
    """Every deployment spec in a YAML file, validated; one `AppConfigError` lists all problems.

    Each problem names the file and the document (1-based). Names must be unique across
    documents, and `depends_on` must name apps of the same file, without cycles.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as stream:
            documents = list(yaml.load_all(stream, Loader=_Loader))
    except OSError as exc:
        raise AppConfigError(f"cannot read deployment spec {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise AppConfigError(f"{path} is not UTF-8 text: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise AppConfigError(f"{path} is not valid YAML: {exc}") from None
    specs: list[DeploymentSpec] = []
    problems: list[str] = []
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        try:
            specs.append(_spec(path, number, document))
        except AppConfigError as exc:
            where = f"{path}: document {number}"
            if isinstance(document, Mapping) and isinstance(document.get("name"), str):
                where += f" (app {document['name']!r})"
            problems.extend(f"{where}: {problem}" for problem in exc.problems or [exc.message])
    if not specs and not problems:
        raise AppConfigError(f"{path} has no deployment specs; write one YAML document per app")
    problems.extend(_across_documents(path, specs))
    if problems:
        raise AppConfigError(f"invalid deployment specs in {path}:", problems)
    return specs


def order_specs(specs: list[DeploymentSpec]) -> list[list[DeploymentSpec]]:
    """Specs in deploy waves: dependencies first, independent apps in the same wave."""
    by_name = {spec.name: spec for spec in specs}
    waves = deploy_order({spec.name: spec.config.depends_on for spec in specs})
    return [[by_name[name] for name in wave] for wave in waves]


def _spec(path: Path, number: int, document: object) -> DeploymentSpec:
    if not isinstance(document, Mapping):
        raise AppConfigError(
            f"must be a mapping of AppDeployer parameters (name: ..., port: ...), "
            f"got {type(document).__name__}"
        )
    problems = [
        f"{key!r}: keys must be parameter names" for key in document if not isinstance(key, str)
    ]
    params = {
        key: value
        for key, value in document.items()
        if isinstance(key, str) and key not in _SECTIONS
    }
    code = _section(CodeSection, "code", document.get("code"), path.parent, problems)
    bake = _section(BakeSection, "bake", document.get("bake"), path.parent, problems)
    if bake is not None and params.get("image") is not None:
        problems.append("image and bake are both given; bake produces the image, so drop one")
    if "code_package" in params:
        params["code_package"] = _code_package(params["code_package"], problems)
        if code is not None:
            problems.append("code and code_package are both given; keep one")
    elif document.get("code") is None:
        problems.append("no code: section and no code_package; the deployer needs code to run")
    try:
        config = AppConfig.from_kwargs(**params)
    except AppConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise AppConfigError("invalid deployment spec", problems)
    return DeploymentSpec(path, number, config, code, bake)


def _section(model: type[_S], key: str, raw: object, base: Path, problems: list[str]) -> _S | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{key}: must be a mapping, got {type(raw).__name__}")
        return None
    resolved = {name: _resolve(name, value, base) for name, value in raw.items()}
    try:
        return model.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(_problem(key, detail, list(model.model_fields)) for detail in exc.errors())
        return None


def _problem(key: str, detail: ErrorDetails, known: list[str]) -> str:
    """One `where: what is wrong` line for a pydantic error in section `key`."""
    where = ".".join(str(part) for part in (key, *detail["loc"]))
    if detail["type"] == "value_error":
        text = str(detail.get("ctx", {}).get("error", detail["msg"]))
    elif detail["type"] == "missing":
        text = "missing; this key is required"
    elif detail["type"] == "extra_forbidden":
        text = f"unknown key; known keys: {', '.join(known)}"
    else:
        text = f"{detail['msg']} (got {detail['input']!r})"
    return f"{where}: {text}"


def _resolve(name: str, value: object, base: Path) -> object:
    """Paths in a spec are relative to the spec file, not to the working directory."""
    if name in ("requirements_file", "pyproject_toml") and isinstance(value, str):
        return str(base / Path(value).expanduser())
    if name == "src_paths" and isinstance(value, list):
        return [str(base / Path(p).expanduser()) if isinstance(p, str) else p for p in value]
    return value


def _code_package(raw: object, problems: list[str]) -> PackagedCode | None:
    """`code_package: {url: ..., key: ...}` names code packaged earlier."""
    if isinstance(raw, Mapping) and set(raw) == {"url", "key"}:
        url, key = raw["url"], raw["key"]
        if isinstance(url, str) and isinstance(key, str) and url and key:
            return PackagedCode(url, key)
    problems.append(
        f"code_package: must be a mapping {{url: ..., key: ...}} from package_code, got {raw!r}"
    )
    return None


def _across_documents(path: Path, specs: list[DeploymentSpec]) -> list[str]:
    problems = []
    first: dict[str, DeploymentSpec] = {}
    for spec in specs:
        earlier = first.setdefault(spec.name, spec)
        if earlier is not spec:
            problems.append(
                f"{path}: documents {earlier.document} and {spec.document} both define app "
                f"{spec.name!r}; app names must be unique"
            )
    if not problems:
        try:
            order_specs(specs)
        except AppConfigError as exc:
            problems.append(f"{path}: {exc.message}")
    return problems
