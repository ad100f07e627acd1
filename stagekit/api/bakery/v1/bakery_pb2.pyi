from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Compression(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPRESSION_UNSPECIFIED: _ClassVar[Compression]
    COMPRESSION_GZIP: _ClassVar[Compression]
    COMPRESSION_ZSTD: _ClassVar[Compression]

class ErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_KIND_UNSPECIFIED: _ClassVar[ErrorKind]
    ERROR_KIND_INVALID_INPUT: _ClassVar[ErrorKind]
    ERROR_KIND_NOT_FOUND: _ClassVar[ErrorKind]
    ERROR_KIND_UNAVAILABLE: _ClassVar[ErrorKind]
    ERROR_KIND_CONFLICT: _ClassVar[ErrorKind]
    ERROR_KIND_INTERNAL: _ClassVar[ErrorKind]
    ERROR_KIND_CANCELLED: _ClassVar[ErrorKind]
    ERROR_KIND_DEADLINE_EXCEEDED: _ClassVar[ErrorKind]

class Unit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNIT_UNSPECIFIED: _ClassVar[Unit]
    UNIT_BYTES: _ClassVar[Unit]
    UNIT_ITEMS: _ClassVar[Unit]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_BUILT: _ClassVar[Outcome]
    OUTCOME_HIT: _ClassVar[Outcome]
    OUTCOME_JOINED: _ClassVar[Outcome]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_BAKE: _ClassVar[Scope]
    SCOPE_ADMIN: _ClassVar[Scope]
COMPRESSION_UNSPECIFIED: Compression
COMPRESSION_GZIP: Compression
COMPRESSION_ZSTD: Compression
ERROR_KIND_UNSPECIFIED: ErrorKind
ERROR_KIND_INVALID_INPUT: ErrorKind
ERROR_KIND_NOT_FOUND: ErrorKind
ERROR_KIND_UNAVAILABLE: ErrorKind
ERROR_KIND_CONFLICT: ErrorKind
ERROR_KIND_INTERNAL: ErrorKind
ERROR_KIND_CANCELLED: ErrorKind
ERROR_KIND_DEADLINE_EXCEEDED: ErrorKind
UNIT_UNSPECIFIED: Unit
UNIT_BYTES: Unit
UNIT_ITEMS: Unit
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_BUILT: Outcome
OUTCOME_HIT: Outcome
OUTCOME_JOINED: Outcome
SCOPE_UNSPECIFIED: Scope
SCOPE_BAKE: Scope
SCOPE_ADMIN: Scope

class SourceFile(_message.Message):
    __slots__ = ("path", "content", "includes")
    class IncludesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    INCLUDES_FIELD_NUMBER: _ClassVar[int]
    path: str
    content: str
    includes: _containers.ScalarMap[str, str]
    def __init__(self, path: _Optional[str] = ..., content: _Optional[str] = ..., includes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BakeRequest(_message.Message):
    __slots__ = ("pypi", "requirements", "pyproject", "base_image", "python", "platform", "cache_name", "compression", "force", "max_age_seconds", "request_id", "conda", "environment", "conda_lock", "channels", "cuda", "system_packages", "no_build")
    class PypiEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CondaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PYPI_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    PYPROJECT_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CACHE_NAME_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONDA_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CONDA_LOCK_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CUDA_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PACKAGES_FIELD_NUMBER: _ClassVar[int]
    NO_BUILD_FIELD_NUMBER: _ClassVar[int]
    pypi: _containers.ScalarMap[str, str]
    requirements: SourceFile
    pyproject: SourceFile
    base_image: str
    python: str
    platform: str
    cache_name: str
    compression: Compression
    force: bool
    max_age_seconds: int
    request_id: str
    conda: _containers.ScalarMap[str, str]
    environment: SourceFile
    conda_lock: SourceFile
    channels: _containers.RepeatedScalarFieldContainer[str]
    cuda: str
    system_packages: _containers.RepeatedScalarFieldContainer[str]
    no_build: bool
    def __init__(self, pypi: _Optional[_Mapping[str, str]] = ..., requirements: _Optional[_Union[SourceFile, _Mapping]] = ..., pyproject: _Optional[_Union[SourceFile, _Mapping]] = ..., base_image: _Optional[str] = ..., python: _Optional[str] = ..., platform: _Optional[str] = ..., cache_name: _Optional[str] = ..., compression: _Optional[_Union[Compression, str]] = ..., force: _Optional[bool] = ..., max_age_seconds: _Optional[int] = ..., request_id: _Optional[str] = ..., conda: _Optional[_Mapping[str, str]] = ..., environment: _Optional[_Union[SourceFile, _Mapping]] = ..., conda_lock: _Optional[_Union[SourceFile, _Mapping]] = ..., channels: _Optional[_Iterable[str]] = ..., cuda: _Optional[str] = ..., system_packages: _Optional[_Iterable[str]] = ..., no_build: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("build_id", "request_id")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    request_id: str
    def __init__(self, build_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("build_id", "request_id")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    request_id: str
    def __init__(self, build_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelReply(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    def __init__(self, cancelled: _Optional[bool] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    def __init__(self, build_id: _Optional[str] = ...) -> None: ...

class Queued(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "unit", "done", "total", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    unit: Unit
    done: int
    total: int
    message: str
    def __init__(self, stage: _Optional[str] = ..., unit: _Optional[_Union[Unit, str]] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("message", "warning")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    message: str
    warning: bool
    def __init__(self, message: _Optional[str] = ..., warning: _Optional[bool] = ...) -> None: ...

class BakeResult(_message.Message):
    __slots__ = ("image", "python_path", "spec_id", "lock_digest", "outcome", "stage_seconds", "bytes_uploaded", "refreshed")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PYTHON_PATH_FIELD_NUMBER: _ClassVar[int]
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BYTES_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_FIELD_NUMBER: _ClassVar[int]
    image: str
    python_path: str
    spec_id: str
    lock_digest: str
    outcome: Outcome
    stage_seconds: _containers.ScalarMap[str, float]
    bytes_uploaded: int
    refreshed: bool
    def __init__(self, image: _Optional[str] = ..., python_path: _Optional[str] = ..., spec_id: _Optional[str] = ..., lock_digest: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., bytes_uploaded: _Optional[int] = ..., refreshed: _Optional[bool] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: ErrorKind
    message: str
    def __init__(self, kind: _Optional[_Union[ErrorKind, str]] = ..., message: _Optional[str] = ...) -> None: ...

class BakeEvent(_message.Message):
    __slots__ = ("accepted", "queued", "progress", "log", "result", "error")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    accepted: Accepted
    queued: Queued
    progress: Progress
    log: LogLine
    result: BakeResult
    error: Error
    def __init__(self, accepted: _Optional[_Union[Accepted, _Mapping]] = ..., queued: _Optional[_Union[Queued, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., log: _Optional[_Union[LogLine, _Mapping]] = ..., result: _Optional[_Union[BakeResult, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class PackageFile(_message.Message):
    __slots__ = ("path", "executable", "size", "blake3")
    PATH_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLAKE3_FIELD_NUMBER: _ClassVar[int]
    path: str
    executable: bool
    size: int
    blake3: str
    def __init__(self, path: _Optional[str] = ..., executable: _Optional[bool] = ..., size: _Optional[int] = ..., blake3: _Optional[str] = ...) -> None: ...

class PackageRequest(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[PackageFile]
    def __init__(self, files: _Optional[_Iterable[_Union[PackageFile, _Mapping]]] = ...) -> None: ...

class PackageReply(_message.Message):
    __slots__ = ("packaged", "missing")
    PACKAGED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    packaged: PackagedCode
    missing: MissingContents
    def __init__(self, packaged: _Optional[_Union[PackagedCode, _Mapping]] = ..., missing: _Optional[_Union[MissingContents, _Mapping]] = ...) -> None: ...

class PackagedCode(_message.Message):
    __slots__ = ("url", "key")
    URL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    url: str
    key: str
    def __init__(self, url: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class MissingContents(_message.Message):
    __slots__ = ("blake3",)
    BLAKE3_FIELD_NUMBER: _ClassVar[int]
    blake3: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blake3: _Optional[_Iterable[str]] = ...) -> None: ...

class ContentChunk(_message.Message):
    __slots__ = ("blake3", "data", "last")
    BLAKE3_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    blake3: str
    data: bytes
    last: bool
    def __init__(self, blake3: _Optional[str] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class UploadReply(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stored: _Optional[_Iterable[str]] = ...) -> None: ...

class WarmItem(_message.Message):
    __slots__ = ("request", "platforms", "refresh")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    request: BakeRequest
    platforms: _containers.RepeatedScalarFieldContainer[str]
    refresh: bool
    def __init__(self, request: _Optional[_Union[BakeRequest, _Mapping]] = ..., platforms: _Optional[_Iterable[str]] = ..., refresh: _Optional[bool] = ...) -> None: ...

class WarmResult(_message.Message):
    __slots__ = ("request", "platform", "result", "error")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request: BakeRequest
    platform: str
    result: BakeResult
    error: Error
    def __init__(self, request: _Optional[_Union[BakeRequest, _Mapping]] = ..., platform: _Optional[str] = ..., result: _Optional[_Union[BakeResult, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class CacheEntry(_message.Message):
    __slots__ = ("spec_id", "image", "platform", "size", "created", "last_used", "hits")
    SPEC_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    spec_id: str
    image: str
    platform: str
    size: int
    created: int
    last_used: int
    hits: int
    def __init__(self, spec_id: _Optional[str] = ..., image: _Optional[str] = ..., platform: _Optional[str] = ..., size: _Optional[int] = ..., created: _Optional[int] = ..., last_used: _Optional[int] = ..., hits: _Optional[int] = ...) -> None: ...

class ListCacheRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCacheReply(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[CacheEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[CacheEntry, _Mapping]]] = ...) -> None: ...

class PruneRequest(_message.Message):
    __slots__ = ("older_than_seconds", "unused_for_seconds", "dry_run")
    OLDER_THAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNUSED_FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    older_than_seconds: int
    unused_for_seconds: int
    dry_run: bool
    def __init__(self, older_than_seconds: _Optional[int] = ..., unused_for_seconds: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class PruneReply(_message.Message):
    __slots__ = ("removed", "contents_removed", "content_bytes_removed")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BYTES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedCompositeFieldContainer[CacheEntry]
    contents_removed: int
    content_bytes_removed: int
    def __init__(self, removed: _Optional[_Iterable[_Union[CacheEntry, _Mapping]]] = ..., contents_removed: _Optional[int] = ..., content_bytes_removed: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("bakes_by_outcome", "cache_entries", "cache_bytes", "queued", "running")
    class BakesByOutcomeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BAKES_BY_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    bakes_by_outcome: _containers.ScalarMap[str, int]
    cache_entries: int
    cache_bytes: int
    queued: int
    running: int
    def __init__(self, bakes_by_outcome: _Optional[_Mapping[str, int]] = ..., cache_entries: _Optional[int] = ..., cache_bytes: _Optional[int] = ..., queued: _Optional[int] = ..., running: _Optional[int] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "scope")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    scope: Scope
    def __init__(self, name: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ...) -> None: ...

class CreateTokenReply(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...
