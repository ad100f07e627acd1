"""Settings read from the environment, each with a default that works on one machine."""

import os
from pathlib import Path

DEFAULT_SUFFIXES: tuple[str, ...] = (
    ".py", ".txt", ".yaml", ".yml", ".json", ".html", ".css",
    ".js", ".jsx", ".ts", ".tsx", ".md", ".rst",
)  # fmt: skip
"""The reference API's default suffixes."""

DEFAULT_EXCLUDES: tuple[str, ...] = (".git/", "__pycache__/", ".venv/", "node_modules/")
"""Ignore patterns applied before any .gitignore; a `!pattern` in .bakeryignore re-includes."""

WARN_BYTES = 100 * 1000 * 1000
"""A package larger than this (uncompressed) is allowed but logged as a warning."""


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback)


def cache_dir() -> Path:
    """Local caches (stat cache, previous tarballs): `BAKERY_CACHE_DIR`, else ~/.cache/bakery."""
    configured = os.environ.get("BAKERY_CACHE_DIR")
    return Path(configured) if configured else _xdg("XDG_CACHE_HOME", ".cache") / "bakery"


def code_store_url() -> str:
    """Where packages go: `BAKERY_CODE_STORE` (a directory, file:// or s3:// URL)."""
    configured = os.environ.get("BAKERY_CODE_STORE")
    if configured:
        return configured
    return str(_xdg("XDG_DATA_HOME", ".local/share") / "bakery" / "code")


def max_package_bytes() -> int:
    """Hard limit on a package's uncompressed size: `BAKERY_CODE_MAX_BYTES`, default 1 GB."""
    return int(os.environ.get("BAKERY_CODE_MAX_BYTES") or 1000 * 1000 * 1000)
