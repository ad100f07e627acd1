"""What `package_code` is asked to do, as one typed value.

A service message maps onto `PackageRequest` field by field; `package_code`'s keyword
options are checked by building one. Everything that is about the call rather than the
package (logger, progress, events, cancellation, deadline) stays outside it. Fields left
unset (None; also "" and 0, as proto3 sends them) take their defaults from the environment
when the package is made: `BAKERY_CODE_STORE`, `BAKERY_CODE_MAX_BYTES`, `BAKERY_CACHE_DIR`.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager import config
from packager.errors import CodePackagingException


def _path_text(value: Any, what: str) -> str:
    """A str or os.PathLike as text; anything else (bytes included) is refused."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str) or "\0" in text:
        raise CodePackagingException(f"{what} must be a path (str, no NUL), got {value!r}")
    return text


def _strings(value: Any, what: str, allow_empty_items: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        raise CodePackagingException(f"{what} must be a list, not a string: use [{value!r}]")
    if not isinstance(value, Sequence) or not all(
        isinstance(item, str) and (item or allow_empty_items) for item in value
    ):
        kind = "strings" if allow_empty_items else "non-empty strings"
        raise CodePackagingException(f"{what} must be a list of {kind}, got {value!r}")
    return tuple(value)


def _src_paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes | os.PathLike):
        raise CodePackagingException(
            f"src_paths must be a list of directories, not a single path: use [{str(value)!r}]"
        )
    if not isinstance(value, Sequence):
        raise CodePackagingException(
            f"src_paths must be a list of directories, got {type(value).__name__} {value!r}"
        )
    if not value:
        raise CodePackagingException("src_paths is empty: name at least one directory to package")
    return tuple(_path_text(path, "each src path") for path in value)


def _max_bytes(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CodePackagingException(
            f"max_bytes must be a positive number of bytes (0 or None: BAKERY_CODE_MAX_BYTES), "
            f"got {value!r}"
        )
    return value or None


@dataclass(frozen=True)
class PackageRequest:
    """The files to package (`src_paths`, `suffixes`, `excludes`), where to store them and
    the limits. Lists are kept as tuples; a bad value is a `CodePackagingException`."""

    src_paths: tuple[str, ...]
    """Directories whose contents land at the package root."""
    suffixes: tuple[str, ...] = config.DEFAULT_SUFFIXES
    """File name endings to package (an empty tuple matches nothing)."""
    excludes: tuple[str, ...] = config.DEFAULT_EXCLUDES
    """Ignore patterns applied before any .gitignore; () keeps everything."""
    store: str | None = None
    """Store URL: a directory, file:// or s3://bucket/prefix (None: BAKERY_CODE_STORE)."""
    max_bytes: int | None = None
    """Limit on the uncompressed tar stream (None: BAKERY_CODE_MAX_BYTES)."""
    cache_dir: str | None = None
    """Where stat caches and previous tarballs live (None: BAKERY_CACHE_DIR)."""

    def __post_init__(self) -> None:
        normalised = {
            "src_paths": _src_paths(self.src_paths),
            "suffixes": _strings(self.suffixes, "suffixes", allow_empty_items=False),
            "excludes": _strings(self.excludes, "excludes", allow_empty_items=True),
            "store": _path_text(self.store, "store") if self.store else None,
            "max_bytes": _max_bytes(self.max_bytes),
            "cache_dir": _path_text(self.cache_dir, "cache_dir") if self.cache_dir else None,
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    def store_url(self) -> str:
        return self.store or config.code_store_url()

    def size_limit(self) -> int:
        return self.max_bytes or config.max_package_bytes()

    def cache_root(self) -> Path:
        return Path(self.cache_dir or config.cache_dir())
