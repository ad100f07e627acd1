"""The bakery's settings, read from the environment, each with a one-machine default."""

import os
from pathlib import Path

from bakery.errors import ImageBakingException
from bakery.platforms import DEFAULT_PLATFORM
from stagekit.dirs import cache_dir, data_dir

ENV_PREFIX = "/opt/bakery/env"
"""Where packages are installed in the image; `<prefix>/bin/python` is the python_path."""

DEFAULT_BASE_TAG = "base-debian-bookworm"
"""Tag of the embedded default base (Debian bookworm + python3) in the local layout."""


def bake_cache_dir() -> Path:
    """Blobs, wheels and layers: `<BAKERY_CACHE_DIR>/bake`."""
    return cache_dir() / "bake"


def image_layout_dir() -> Path:
    """The embedded default publish target: `BAKERY_IMAGE_LAYOUT`, an OCI layout directory."""
    return Path(os.environ.get("BAKERY_IMAGE_LAYOUT") or data_dir() / "images")


def registry() -> str | None:
    """`BAKERY_REGISTRY=host:port/repo`: publish there instead of the local layout."""
    return os.environ.get("BAKERY_REGISTRY") or None


def service_url() -> str | None:
    """`BAKERY_URL=grpc://host:port`: bake on that Bakery server instead of in this process."""
    return os.environ.get("BAKERY_URL") or None


def base_image() -> str | None:
    """`BAKERY_BASE_IMAGE`: the default base; unset means the embedded Debian base."""
    return os.environ.get("BAKERY_BASE_IMAGE") or None


def base_tag_ttl() -> float:
    """Seconds a base image tag stays pinned to the digest it resolved to (`BAKERY_BASE_TTL`)."""
    raw = os.environ.get("BAKERY_BASE_TTL") or "3600"
    try:
        return float(raw)
    except ValueError:
        raise ImageBakingException(f"BAKERY_BASE_TTL={raw!r} is not a number of seconds") from None


def spec_max_age() -> float | None:
    """`BAKERY_SPEC_MAX_AGE` (`7d`, `12h`, seconds): how long an unpinned spec's resolution is
    trusted before a bake re-resolves it; unset: forever (the spec's tag alone decides)."""
    raw = (os.environ.get("BAKERY_SPEC_MAX_AGE") or "").strip()
    if not raw:
        return None
    from stagekit.durations import parse_duration

    try:
        return float(parse_duration(raw))
    except ValueError as exc:
        raise ImageBakingException(
            f"BAKERY_SPEC_MAX_AGE: {exc}; set it to how long a resolved spec stays fresh, "
            "or unset it to never re-resolve"
        ) from None


SOURCE_DATE_EPOCH_LIMIT = 253402300800
"""10000-01-01: RFC 3339 timestamps have four-digit years."""


def source_date_epoch() -> int:
    """`SOURCE_DATE_EPOCH` (reproducible-builds.org): the images' creation time, in seconds
    since 1970; unset means 0, so the same inputs give the same digest on any day."""
    raw = (os.environ.get("SOURCE_DATE_EPOCH") or "0").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= SOURCE_DATE_EPOCH_LIMIT:
        raise ImageBakingException(
            f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds since 1970-01-01 UTC; "
            "set it to a whole number such as the last commit's time "
            "(git log -1 --format=%ct) or unset it"
        )
    return int(raw)


def platform() -> str:
    """Target platform when none is given: `BAKERY_PLATFORM`, default linux/amd64."""
    return os.environ.get("BAKERY_PLATFORM") or DEFAULT_PLATFORM
