"""Settings read from the environment, each with a default that works on one machine."""

import os

from packager.errors import CodePackagingException
from stagekit.dirs import cache_dir, data_dir

__all__ = ["cache_dir", "code_store_url", "max_package_bytes"]

DEFAULT_SUFFIXES: tuple[str, ...] = (
    ".py", ".txt", ".yaml", ".yml", ".json", ".html", ".css",
    ".js", ".jsx", ".ts", ".tsx", ".md", ".rst",
)  # fmt: skip
"""The reference API's default suffixes."""

DEFAULT_EXCLUDES: tuple[str, ...] = (".git/", "__pycache__/", ".venv/", "node_modules/")
"""Ignore patterns applied before any .gitignore; a `!pattern` in .bakeryignore re-includes."""

WARN_BYTES = 100 * 1000 * 1000
"""A package larger than this (uncompressed) is allowed but logged as a warning."""


def code_store_url() -> str:
    """Where packages go: `BAKERY_CODE_STORE` (a directory, file:// or s3:// URL)."""
    return os.environ.get("BAKERY_CODE_STORE") or str(data_dir() / "code")


def max_package_bytes() -> int:
    """Hard limit on a package's uncompressed (tar) size, when packaging and when fetching:
    `BAKERY_CODE_MAX_BYTES`, default 1 GB."""
    value = os.environ.get("BAKERY_CODE_MAX_BYTES") or "1000000000"
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise CodePackagingException(
            f"BAKERY_CODE_MAX_BYTES={value!r} is not a positive number of bytes; "
            "set e.g. 2000000000"
        )
    return limit
