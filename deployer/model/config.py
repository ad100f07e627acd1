"""`AppConfig`: every `AppDeployer` parameter, validated once and normalized.

Runtimes read only this model, never raw keyword arguments, so each rule (names, ports,
quantities, replica bounds, labels) lives in one place and every runtime refuses bad input
with the same message. `config_digest` names the deploy-relevant content, so re-deploying an
unchanged config can be recognized as a no-op.
"""

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

import blake3
from pydantic import (
    BaseModel,
    ConfigDict,
    JsonValue,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from deployer.exceptions import AppConfigError
from deployer.model.auth_types import AUTH_TYPES, DEFAULT_RPM, AuthType
from deployer.model.names import (
    is_app_name,
    is_env_name,
    is_label_key,
    is_label_value,
    is_secret_name,
)
from deployer.model.quantities import Quantity, parse_bytes, parse_cpu, parse_gpu
from packager import CodePackagingException, PackagedCode

DIGEST_SCHEMA = "bakery.deployer.app-config/1"
"""Part of every digest: a change in what a field means must not look like "unchanged"."""

_NOT_DEPLOYED = frozenset({"force_upgrade", "depends_on"})
"""How to deploy (take over an upgrade) and in which order: not part of what runs."""

_IMAGE = re.compile(r"\S+")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _suggest_name(value: str) -> str:
    dashed = re.sub(r"[^a-z0-9]+", "-", value.lower()).lstrip("-0123456789")
    return dashed[:63].rstrip("-") or "my-app"


def _check_name(value: object, what: str) -> str:
    """DNS-1123 label starting with a letter: valid as a container, Service and host name."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if is_app_name(value):
        return value
    raise ValueError(
        f"{value!r} is not a valid {what}: use lowercase letters, digits and '-', start with a "
        f"letter, end with a letter or digit, at most 63 characters (e.g. {_suggest_name(value)!r})"
    )


def _strings(value: object, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"must be a list of strings, not a single string: use [{value!r}]")
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of strings, e.g. {example}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"every item must be a non-empty string, got {item!r}")
    return tuple(value)


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once")
    return items


def _check_label_value(value: object, what: str) -> str:
    """Kubernetes label values: the runtimes store tags, project and branch as labels."""
    if not isinstance(value, str):
        raise ValueError(
            f"{what} must be a string, got {type(value).__name__} {value!r}; quote it in YAML"
        )
    if not is_label_value(value):
        raise ValueError(
            f"{what} {value!r} is not usable as a label: at most 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit"
        )
    return value


def _check_label_key(key: object) -> str:
    if not isinstance(key, str):
        raise ValueError(f"tag key must be a string, got {type(key).__name__} {key!r}")
    if not is_label_key(key):
        raise ValueError(
            f"tag key {key!r} is not usable as a label key: at most 63 letters, digits, '-', '_' "
            "or '.', optionally after a DNS prefix such as 'example.com/'"
        )
    return key


def _tags(value: object) -> dict[str, str]:
    example = "[{'env': 'prod'}, {'team': 'ml'}]"
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        pairs = []
        for item in value:
            if not isinstance(item, Mapping) or not item:
                raise ValueError(f"each tag must be a {{key: value}} mapping as in {example}")
            pairs.extend(item.items())
    else:
        raise ValueError(f"must be a list of {{key: value}} mappings, e.g. {example}")
    tags: dict[str, str] = {}
    for key, tag_value in pairs:
        key = _check_label_key(key)
        tag_value = _check_label_value(tag_value, f"tag {key!r} value")
        if tags.setdefault(key, tag_value) != tag_value:
            raise ValueError(f"tag {key!r} is given twice, as {tags[key]!r} and {tag_value!r}")
    return dict(sorted(tags.items()))


def _environment(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of variable names to strings, e.g. {'DEBUG': 'false'}")
    for key, env_value in value.items():
        if not isinstance(key, str) or not is_env_name(key):
            raise ValueError(
                f"{key!r} is not a variable name: use letters, digits and '_', "
                "not starting with a digit"
            )
        if env_value is None:
            raise ValueError(f"{key} has no value; give a string, e.g. {key}: ''")
        if not isinstance(env_value, str):
            quoted = json.dumps(json.dumps(env_value))
            raise ValueError(
                f"{key} must be a string, got {type(env_value).__name__} {env_value!r}; "
                f"quote it, e.g. {key}: {quoted}"
            )
    return dict(value)


def _count(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be a whole number >= 0, got {value!r}")
    return value


class ScalingPolicy(_Frozen):
    """Scale up when requests per minute per replica cross `rpm`."""

    rpm: StrictInt = DEFAULT_RPM

    @field_validator("rpm")
    @classmethod
    def _positive(cls, rpm: int) -> int:
        if rpm < 1:
            raise ValueError(f"rpm must be at least 1, got {rpm}; the default is {DEFAULT_RPM}")
        return rpm


class ReplicaConfig(_Frozen):
    """Replica bounds, normalized: `fixed: n` becomes `min == max == n`.

    A scaling policy exists exactly when `min != max` (the reference's rule), defaulting to
    `rpm: 60`; giving one for a fixed count is refused, since nothing would honour it.
    """

    min: int
    max: int
    scaling_policy: ScalingPolicy | None = None

    @property
    def fixed(self) -> int | None:
        return self.min if self.min == self.max else None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: object) -> object:
        if isinstance(data, ReplicaConfig):
            return data
        if not isinstance(data, Mapping):
            raise ValueError("must be a mapping such as {'min': 1, 'max': 3} or {'fixed': 2}")
        unknown = sorted(set(data) - {"fixed", "min", "max", "scaling_policy"})
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown}; use fixed, or min and max, and scaling_policy"
            )
        fixed = _count(data.get("fixed"), "fixed")
        low = _count(data.get("min"), "min")
        high = _count(data.get("max"), "max")
        if fixed is not None:
            if low is not None or high is not None:
                raise ValueError(
                    "fixed cannot be combined with min or max: give {'fixed': n} for a constant "
                    "count, or {'min': a, 'max': b} to autoscale"
                )
            if fixed < 1:
                raise ValueError(
                    "fixed must be at least 1; to allow scaling to zero use {'min': 0, 'max': n}"
                )
            low = high = fixed
        if low is None:
            low = 1 if high is None else min(1, high)
        if high is None:
            high = max(low, 1)
        if high < 1 or low > high:
            raise ValueError(f"need 0 <= min <= max and max >= 1, got min={low}, max={high}")
        policy = data.get("scaling_policy")
        if low == high and policy is not None:
            raise ValueError(
                f"scaling_policy applies only when min != max; this app has a fixed {low} "
                "replica(s): drop scaling_policy or give different min and max"
            )
        if low != high and policy is None:
            policy = ScalingPolicy()
        return {"min": low, "max": high, "scaling_policy": policy}


class ResourceConfig(_Frozen):
    """Per-replica resource requests; None leaves the runtime's default."""

    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: Quantity | None = None
    disk: Quantity | None = None
    shared_memory: Quantity | None = None

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> object:
        return value if isinstance(value, Quantity) else parse_cpu(value, "resources.cpu")

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu(cls, value: object) -> object:
        return value if isinstance(value, Quantity) else parse_gpu(value, "resources.gpu")

    @field_validator("memory", "disk", "shared_memory", mode="before")
    @classmethod
    def _bytes(cls, value: object, info: Any) -> object:
        if isinstance(value, Quantity):
            return value
        return parse_bytes(value, f"resources.{info.field_name}")


class AuthConfig(_Frozen):
    """Who may reach the app; Browser and public by default, as on the reference platform."""

    type: AuthType = "Browser"
    public: StrictBool = True

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: object) -> str:
        for auth_type in AUTH_TYPES:
            if isinstance(value, str) and value.lower() == auth_type.lower():
                return auth_type
        raise ValueError(f"{value!r} is not an auth type; use one of {', '.join(AUTH_TYPES)}")


class AppConfig(_Frozen):
    """Every `AppDeployer` parameter plus `depends_on`; build it with `from_kwargs`.

    `code_package` may be None here because specs fill it in after packaging; a runtime asks
    `required_code_package()` at deploy time, as the reference requires code for a deploy.
    """

    name: str
    port: int
    description: StrictStr | None = None
    app_type: StrictStr | None = None
    image: str | None = None
    tags: dict[str, str] = {}
    secrets: tuple[str, ...] = ()
    compute_pools: tuple[str, ...] = ()
    environment: dict[str, str] = {}
    commands: tuple[str, ...] = ()
    resources: ResourceConfig = ResourceConfig()
    auth: AuthConfig = AuthConfig()
    replicas: ReplicaConfig = ReplicaConfig(min=1, max=1)
    code_package: PackagedCode | None = None
    force_upgrade: StrictBool = False
    persistence: StrictStr | None = None
    project: str | None = None
    branch: str | None = None
    models: tuple[JsonValue, ...] = ()
    data: tuple[JsonValue, ...] = ()
    generate_static_url: StrictBool = False
    depends_on: tuple[str, ...] = ()

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> str:
        return _check_name(value, "app name")

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole TCP port number such as 8000, got {value!r}")
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is out of range: use a TCP port from 1 to 65535, e.g. 8000")
        return value

    @field_validator("image", mode="before")
    @classmethod
    def _image(cls, value: object) -> str:
        if hasattr(value, "image") and hasattr(value, "python_path"):
            raise ValueError("got a BakedImage; pass its .image (image=baked.image)")
        if not isinstance(value, str) or not _IMAGE.fullmatch(value):
            raise ValueError(f"must be an image reference like 'registry/app:tag', got {value!r}")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> dict[str, str]:
        return _tags(value)

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: object) -> dict[str, str]:
        return _environment(value)

    @field_validator("commands", mode="before")
    @classmethod
    def _commands(cls, value: object) -> tuple[str, ...]:
        return _strings(value, "['python server.py']")

    @field_validator("compute_pools", mode="before")
    @classmethod
    def _compute_pools(cls, value: object) -> tuple[str, ...]:
        return _unique(_strings(value, "['default']"))

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: object) -> tuple[str, ...]:
        names = _unique(_strings(value, "['my-api-keys']"))
        for name in names:
            if not is_secret_name(name):
                raise ValueError(
                    f"secret name {name!r} is invalid: lowercase letters, digits, '-' and '.', "
                    "starting and ending with a letter or digit"
                )
        return names

    @field_validator("depends_on", mode="before")
    @classmethod
    def _depends_on(cls, value: object) -> tuple[str, ...]:
        names = _unique(_strings(value, "['backend-api']"))
        return tuple(_check_name(name, "app name in depends_on") for name in names)

    @field_validator("project", "branch", mode="before")
    @classmethod
    def _label(cls, value: object, info: Any) -> str:
        if value == "":
            raise ValueError(f"{info.field_name} is empty; leave it out instead")
        return _check_label_value(value, info.field_name)

    @field_validator("models", "data", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be a list, got {type(value).__name__}")
        return value

    @field_validator("code_package", mode="before")
    @classmethod
    def _code_package(cls, value: object) -> PackagedCode:
        """Refused with the packager's own exception, as the reference does."""
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
            url, key = value
            if url and key:
                return PackagedCode(url, key)
        raise CodePackagingException(
            f"code_package must be the PackagedCode that package_code() returns, got "
            f"{type(value).__name__} {value!r}; use pkg = package_code(src_paths=['./src']) "
            "and AppDeployer(..., code_package=pkg)"
        )

    @model_validator(mode="after")
    def _consistent(self) -> "AppConfig":
        if self.name in self.depends_on:
            raise ValueError(f"depends_on: app {self.name!r} cannot depend on itself")
        port = self.environment.get("PORT")
        if port is not None and port != str(self.port):
            raise ValueError(
                f"environment.PORT: the deployer sets PORT={self.port} from port=; "
                f"drop PORT={port!r} from environment or change port"
            )
        return self

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "AppConfig":
        """Validate `AppDeployer` keyword arguments; None means "not given" as in the reference.

        Raises one `AppConfigError` listing every bad field, or `CodePackagingException` for
        a `code_package` that is not a `PackagedCode`.
        """
        given = {key: value for key, value in kwargs.items() if value is not None}
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            name = given.get("name")
            subject = f"app {name!r}" if isinstance(name, str) else "app"
            problems = [cls._describe(error) for error in exc.errors()]
            raise AppConfigError(f"invalid configuration for {subject}:", problems) from None

    def replace(self, **changes: Any) -> "AppConfig":
        """A validated copy with some parameters changed (e.g. the baked image)."""
        return type(self).from_kwargs(**{**dict(self), **changes})

    def required_code_package(self) -> PackagedCode:
        """The code package a deploy needs; the reference refuses to deploy without one."""
        if self.code_package is None:
            raise CodePackagingException(
                f"app {self.name!r} has no code_package; a deploy needs one: "
                "pkg = package_code(src_paths=['./src']); AppDeployer(..., code_package=pkg)"
            )
        return self.code_package

    @property
    def config_digest(self) -> str:
        """blake3 of the canonical JSON of what would run; equal digests mean a no-op deploy.

        Quantities enter as numbers, so "1" and "1000m" CPUs are the same config.
        """
        content = self.model_dump(mode="json", exclude=set(_NOT_DEPLOYED))
        content["resources"] = {
            field: quantity.value if quantity is not None else None
            for field, quantity in self.resources
        }
        content["schema"] = DIGEST_SCHEMA
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return blake3.blake3(canonical.encode("utf-8")).hexdigest()

    @classmethod
    def _describe(cls, error: ErrorDetails) -> str:
        loc = error["loc"]
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        path = path.lstrip(".")
        if error["type"] == "missing":
            text = "missing; this parameter is required"
        elif error["type"] == "extra_forbidden":
            known = list(_SECTIONS.get(tuple(map(str, loc[:-1])), cls).model_fields)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            text = "unknown parameter" + (f"; did you mean {close[0]!r}?" if close else "")
            text += f" (known: {', '.join(known)})"
        elif error["type"] == "value_error":
            text = str(error.get("ctx", {}).get("error", error["msg"]))
        else:
            text = f"{error['msg']} (got {error['input']!r})"
        if not path or text.startswith(f"{path}:") or text.startswith(f"{path} "):
            return text
        return f"{path}: {text}"


_SECTIONS: dict[tuple[str, ...], type[BaseModel]] = {
    ("resources",): ResourceConfig,
    ("auth",): AuthConfig,
    ("replicas", "scaling_policy"): ScalingPolicy,
}
