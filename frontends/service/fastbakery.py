"""Fast Bakery's JSON wire format: its bake request as a Bakery `BakeRequest` message, and
Bakery's answers in the shapes its clients parse.

The clients are Metaflow's / Outerbounds' `FastBakery` (metaflow_extensions ... fast_bakery):
they POST the request to `METAFLOW_FAST_BAKERY_URL` (so point it at
`http://HOST:PORT/api/v1/bake`), with the service headers (`x-api-key`) and no timeout, and
send it a second time once the first answer came. What their parsing needs:

- any status >= 500 raises with the body's text; otherwise the body must be JSON, and
  `error.statusCode` (else the HTTP status) >= 400 raises `*{error.details.kind}*
  {error.details.message}`: so errors carry that shape, never FastAPI's `{"detail": ...}`;
- a 2xx answer is cached by the client for good and its `success.containerImage` and
  `success.pythonPath` become the step's image and interpreter. A failed bake is therefore
  answered `{"failure": {"kind", "message"}}` with its kind's HTTP status (422, 503, ...): a
  2xx failure would be cached as a step with no image, a non-2xx one raises with the message;
- `success.bakingStats`, when present, must hold `solverStats` with `durationMs` and
  `packagesInSolvedEnvironment` (one client reads `bakingStats.solverStats.durationMs`
  unguarded), so it is left out when the package count cannot be read.

Field by field (README has the table): `pipRequirements` become the lines of a requirements
file (each must be one PEP 508 requirement, no pip options), `pythonVersion` the Python,
`baseImage.imageReference` the base, one `platforms` entry the platform (several are refused:
Bakery makes one single-platform image per request, not an index), `imageKind` the layer
compression, `cacheBehavior.responseMaxAgeSeconds` the request's `max_age_seconds`.
`condaMatchspecs` the conda specs (by package name: `numpy>=1.26` -> `conda={"numpy":
">=1.26"}`; with `pipRequirements` too, the PyPI part goes on top of the conda env),
`condaChannels` then `defaultCondaChannel` the channels in priority order (neither: the
server's BAKERY_CONDA_CHANNELS or conda-forge). `perimeterName`, `extraConfigs` and the other
`cacheBehavior` fields are accepted and ignored.
"""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bakery.errors import ImageBakingException
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.errors import ErrorKind

COMPRESSIONS = {"oci-zstd": bakery_pb2.COMPRESSION_ZSTD, "oci-gzip": bakery_pb2.COMPRESSION_GZIP}
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read: a request is a list of requirement strings."""

FAILURE_STATUS = {
    ErrorKind.INVALID_INPUT: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.CONFLICT: 409,
    ErrorKind.INTERNAL: 500,
    ErrorKind.CANCELLED: 503,
    ErrorKind.DEADLINE_EXCEEDED: 504,
}
"""The HTTP status of a failed bake, by its kind (see the module docstring for why not 200)."""

_CONDA_NAME = re.compile(r"\s*([A-Za-z0-9_.+\-]+(?:::[A-Za-z0-9_.+\-]+)?)\s*(.*)", re.S)
"""A match spec's package name (maybe channel-qualified) and the rest, its version/build."""


class _Model(BaseModel):
    # Unknown fields are ignored: newer clients may send more than this server reads.
    model_config = ConfigDict(extra="ignore", frozen=True)


class BaseImage(_Model):
    imageReference: str | None = None


class Platform(_Model):
    os: str = "linux"
    architecture: str


class CacheBehavior(_Model):
    responseMaxAgeSeconds: int | None = Field(default=None, ge=0)
    layerMaxAgeSeconds: int | None = None
    baseImageMaxAgeSeconds: int | None = None
    overwriteExistingLayers: bool | None = None


class FastBakeRequest(_Model):
    """`POST /api/v1/bake`'s body, as Fast Bakery's clients send it."""

    perimeterName: str | None = None
    pythonVersion: str | None = None
    pipRequirements: list[str] | None = None
    condaMatchspecs: list[str] | None = None
    condaChannels: list[str] | None = None
    defaultCondaChannel: str | None = None
    baseImage: BaseImage | None = None
    platforms: list[Platform] | None = None
    imageKind: Literal["oci-zstd", "oci-gzip"] = "oci-zstd"
    cacheBehavior: CacheBehavior | None = None
    extraConfigs: dict[str, Any] | None = None


class BadRequest(Exception):
    """The request cannot be read or mapped: answered with the error shape and `status`."""

    def __init__(self, message: str, status: int = 400, kind: ErrorKind = ErrorKind.INVALID_INPUT):
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


def parse(body: bytes) -> FastBakeRequest:
    """The request in `body`; BadRequest naming every wrong field otherwise."""
    try:
        return FastBakeRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise BadRequest(
            "the body is not a Fast Bakery bake request (" + "; ".join(problems)[:600] + ")"
        ) from None


def bake_message(request: FastBakeRequest) -> bakery_pb2.BakeRequest:
    """The Bakery request for `request`; BadRequest for what cannot be baked as asked."""
    message = bakery_pb2.BakeRequest(compression=COMPRESSIONS[request.imageKind])
    if request.condaMatchspecs:
        message.conda.update(_conda(request.condaMatchspecs))
        channels = [*(request.condaChannels or []), request.defaultCondaChannel]
        message.channels.extend(dict.fromkeys(c for c in channels if c))
    if request.pipRequirements or not request.condaMatchspecs:
        requirements = _requirements(request.pipRequirements or [])
        message.requirements.CopyFrom(
            bakery_pb2.SourceFile(path="requirements.txt", content=requirements)
        )
    if request.pythonVersion:
        message.python = request.pythonVersion
    if request.baseImage is not None and request.baseImage.imageReference:
        message.base_image = request.baseImage.imageReference
    platforms = request.platforms or []
    if len(platforms) > 1:
        named = ", ".join(f"{p.os}/{p.architecture}" for p in platforms)
        raise BadRequest(
            f"platforms lists {len(platforms)} platforms ({named}); Bakery bakes one "
            "single-platform image per request (no multi-platform index yet): send one "
            "request per platform"
        )
    if platforms:
        message.platform = f"{platforms[0].os}/{platforms[0].architecture}"
    behavior = request.cacheBehavior
    if behavior is not None and behavior.responseMaxAgeSeconds is not None:
        message.max_age_seconds = behavior.responseMaxAgeSeconds
    return message


def _conda(specs: list[str]) -> dict[str, str]:
    """Match spec strings by package name, as `bake_image(conda=...)` takes them (the server
    checks each with rattler when it checks the request)."""
    conda: dict[str, str] = {}
    for number, text in enumerate(specs):
        match = _CONDA_NAME.fullmatch(text)
        if match is None or "\n" in text:
            raise BadRequest(
                f"condaMatchspecs[{number}] {text[:80]!r} is not a conda match spec such as "
                "'numpy>=1.26' or 'python=3.11'"
            )
        name, rest = match.groups()
        if name in conda:
            raise BadRequest(f"condaMatchspecs names {name!r} twice; give it once")
        conda[name] = rest.strip()
    return conda


def _requirements(requirements: list[str]) -> str:
    """The lines of a requirements file: each entry one requirement, never a pip option or
    a second line (an `--index-url` or `-r /etc/...` must not ride in on a requirement)."""
    from bakery.spec import one_line, parse_requirement

    lines = []
    for number, text in enumerate(requirements):
        what = f"pipRequirements[{number}] {text[:80]!r}"
        try:
            one_line(text, what)
            if text.lstrip().startswith("-"):
                raise ImageBakingException(
                    f"{what} is a pip option; give requirements only, e.g. 'flask>=2'"
                )
            parse_requirement(text, what)
        except ImageBakingException as exc:
            raise BadRequest(exc.message) from None
        lines.append(text.strip())
    return "".join(f"{line}\n" for line in lines)


def success_body(result: bakery_pb2.BakeResult, packages: int | None) -> dict[str, Any]:
    """A baked image as Fast Bakery answers it; `packages` is the lock's package count
    (None: unknown, and then no `bakingStats` at all)."""
    success: dict[str, Any] = {"containerImage": result.image, "pythonPath": result.python_path}
    if packages is not None:
        solver_ms = round(result.stage_seconds.get("resolve", 0.0) * 1000)
        success["bakingStats"] = {
            "solverStats": {"durationMs": solver_ms, "packagesInSolvedEnvironment": packages}
        }
    return {"success": success}


def failure_body(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    """A bake that failed: its HTTP status and body."""
    return FAILURE_STATUS[kind], {"failure": {"kind": kind.value, "message": message}}


def error_body(status: int, kind: ErrorKind, message: str) -> dict[str, Any]:
    """A request refused before any bake: the shape the clients raise from."""
    return {"error": {"statusCode": status, "details": {"kind": kind.value, "message": message}}}
