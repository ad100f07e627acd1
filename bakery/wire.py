"""Bake messages <-> bakery values: where the service's wire format meets the library's types.

Both ends use it: the server (frontends/service) and the client (bakery/remote.py). It imports
grpc and the generated stubs, so only a remote bake or the server loads it.

A request's requirements file or pyproject arrives as text with its `-r` includes; the server
writes them into a private directory (`write_sources`) and bakes from there, so a remote bake
reads the same files through the same code as a local one.
"""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from bakery.bake import BakeResult
from bakery.errors import ImageBakingException, quoted
from bakery.request import BakeRequest
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.errors import ErrorKind
from stagekit.progress import Event, LogLine, Progress, Unit

COMPRESSION_NAMES = {
    None: bakery_pb2.COMPRESSION_UNSPECIFIED,
    "gzip": bakery_pb2.COMPRESSION_GZIP,
    "zstd": bakery_pb2.COMPRESSION_ZSTD,
}
COMPRESSIONS = {value: name for name, value in COMPRESSION_NAMES.items()}
OUTCOMES = {
    "built": bakery_pb2.OUTCOME_BUILT,
    "hit": bakery_pb2.OUTCOME_HIT,
    "joined": bakery_pb2.OUTCOME_JOINED,
}
UNITS = {"bytes": bakery_pb2.UNIT_BYTES, "items": bakery_pb2.UNIT_ITEMS}
KINDS = {
    ErrorKind.INVALID_INPUT: bakery_pb2.ERROR_KIND_INVALID_INPUT,
    ErrorKind.NOT_FOUND: bakery_pb2.ERROR_KIND_NOT_FOUND,
    ErrorKind.UNAVAILABLE: bakery_pb2.ERROR_KIND_UNAVAILABLE,
    ErrorKind.CONFLICT: bakery_pb2.ERROR_KIND_CONFLICT,
    ErrorKind.INTERNAL: bakery_pb2.ERROR_KIND_INTERNAL,
    ErrorKind.CANCELLED: bakery_pb2.ERROR_KIND_CANCELLED,
    ErrorKind.DEADLINE_EXCEEDED: bakery_pb2.ERROR_KIND_DEADLINE_EXCEEDED,
}


def write_sources(message: bakery_pb2.BakeRequest, workdir: Path) -> BakeRequest:
    """The library's request for `message`, its files written under `workdir`; a path that
    would leave `workdir` is refused as invalid input."""
    files: dict[str, Path | None] = dict.fromkeys(SOURCE_FILES)
    for name, (field, default) in SOURCE_FILES.items():
        if message.HasField(field):
            source = getattr(message, field)
            root = PurePosixPath(source.path).name or default
            files[name] = _write(workdir, root, source.content)
            for path, content in source.includes.items():
                _write(workdir, path, content)
    return BakeRequest(
        pypi=dict(message.pypi) or None,
        conda=dict(message.conda) or None,
        requirements_file=files["requirements_file"],
        pyproject_toml=files["pyproject_toml"],
        environment=files["environment"],
        conda_lock=files["conda_lock"],
        channels=list(message.channels) or None,
        cuda=message.cuda or None,
        base_image=message.base_image or None,
        python=message.python or None,
        platform=message.platform or None,
        cache_name=message.cache_name or None,
        compression=COMPRESSIONS.get(message.compression),
        force=message.force,
        max_age=max_age(message),
        build=not message.no_build,
        system_packages=tuple(message.system_packages),
    )


SOURCE_FILES = {
    "requirements_file": ("requirements", "requirements.txt"),
    "pyproject_toml": ("pyproject", "pyproject.toml"),
    "environment": ("environment", "environment.yml"),
    "conda_lock": ("conda_lock", "conda-lock.yml"),
}
"""`BakeRequest` file fields -> (their `SourceFile` field in the message, default name)."""


def max_age(message: bakery_pb2.BakeRequest) -> float | None:
    """The request's max age in seconds; None when unset (the server's default applies)."""
    if not message.HasField("max_age_seconds"):
        return None
    return float(message.max_age_seconds)


def _write(workdir: Path, path: str, content: str) -> Path:
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts or "\\" in path:
        raise ImageBakingException(
            f"included file {quoted(path)} is outside the including file's directory; the "
            "service takes -r includes at relative paths below it (no absolute paths, no '..')."
        )
    target = workdir.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    return target


def fingerprint(message: bakery_pb2.BakeRequest) -> str:
    """What makes two requests the same build: every field but `request_id`, file contents
    included; a different `max_age` is another build (joining a hit would not refresh). (The
    spec id needs the base pinned first; identical requests are identical
    specs, so this key is enough to share one build.)"""
    fields: dict[str, object] = {
        "pypi": dict(sorted(message.pypi.items())),
        "conda": dict(sorted(message.conda.items())),
        "channels": list(message.channels),
        "cuda": message.cuda,
        "base_image": message.base_image,
        "python": message.python,
        "platform": message.platform,
        "cache_name": message.cache_name,
        "compression": COMPRESSIONS.get(message.compression) or "gzip",
        "force": message.force,
    }
    if message.HasField("max_age_seconds"):
        fields["max_age"] = message.max_age_seconds
    if message.system_packages:
        fields["system_packages"] = sorted(set(message.system_packages))
    if message.no_build:
        fields["no_build"] = True
    for field, _default in SOURCE_FILES.values():
        if message.HasField(field):
            source = getattr(message, field)
            fields[field] = {
                "path": PurePosixPath(source.path).name,
                "content": source.content,
                "includes": dict(sorted(source.includes.items())),
            }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_message(event: Event) -> bakery_pb2.BakeEvent:
    """A reporter's typed event as a stream event."""
    if isinstance(event, Progress):
        progress = bakery_pb2.Progress(
            stage=event.stage,
            unit=UNITS[event.unit],
            done=event.done,
            total=event.total,
            message=event.message,
        )
        return bakery_pb2.BakeEvent(progress=progress)
    return bakery_pb2.BakeEvent(
        log=bakery_pb2.LogLine(message=event.message, warning=event.warning)
    )


def event_value(message: bakery_pb2.BakeEvent) -> Event:
    """A stream's progress or log event as the typed event a local reporter sends."""
    if message.HasField("progress"):
        p = message.progress
        unit: Unit = "bytes" if p.unit == bakery_pb2.UNIT_BYTES else "items"
        return Progress(p.stage, unit, p.done, p.total, p.message)
    return LogLine(message.log.message, message.log.warning)


def result_message(result: BakeResult, outcome: str | None = None) -> bakery_pb2.BakeEvent:
    """The result event; `outcome` overrides the build's (a caller that joined it)."""
    fields = asdict(result)
    fields["outcome"] = OUTCOMES[outcome or result.outcome]
    return bakery_pb2.BakeEvent(result=bakery_pb2.BakeResult(**fields))


def result_value(message: bakery_pb2.BakeResult) -> BakeResult:
    outcome = next(name for name, value in OUTCOMES.items() if value == message.outcome)
    return BakeResult(
        image=message.image,
        python_path=message.python_path,
        spec_id=message.spec_id,
        lock_digest=message.lock_digest,
        outcome=outcome,  # type: ignore[arg-type]
        stage_seconds=dict(message.stage_seconds),
        bytes_uploaded=message.bytes_uploaded,
        refreshed=message.refreshed,
    )


def error_message(kind: ErrorKind, message: str) -> bakery_pb2.BakeEvent:
    return bakery_pb2.BakeEvent(error=bakery_pb2.Error(kind=KINDS[kind], message=message))


def error_kind(kind: int) -> ErrorKind:
    """A wire error kind as the library's (an unknown one is internal)."""
    return next((name for name, value in KINDS.items() if value == kind), ErrorKind.INTERNAL)
