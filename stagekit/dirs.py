"""Where Bakery keeps state on this machine.

Each has one `BAKERY_*` variable that moves everything under it at once.
"""

import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback)


def cache_dir() -> Path:
    """Rebuildable caches: `BAKERY_CACHE_DIR`, else `$XDG_CACHE_HOME/bakery` (~/.cache/bakery)."""
    configured = os.environ.get("BAKERY_CACHE_DIR")
    return Path(configured) if configured else _xdg("XDG_CACHE_HOME", ".cache") / "bakery"


def data_dir() -> Path:
    """Results worth keeping (the embedded stores, deployed apps' records): `BAKERY_DATA_DIR`,
    else `$XDG_DATA_HOME/bakery` (~/.local/share/bakery)."""
    configured = os.environ.get("BAKERY_DATA_DIR")
    return Path(configured) if configured else _xdg("XDG_DATA_HOME", ".local/share") / "bakery"
