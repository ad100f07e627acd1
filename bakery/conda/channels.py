"""Which conda channels a spec is solved from: names or URLs, highest priority first.

Channels come from the call (`channels=`), else `BAKERY_CONDA_CHANNELS` (comma-separated),
else conda-forge. A name (`conda-forge`, `bioconda`, `owner/label/dev`) means that channel on
anaconda.org; a URL may be http(s) (a mirror) or `file://` (a channel directory on this
machine). Credentials never go in a channel URL, since the URL ends up in the lock and the
image: `bakery.conda.auth` gives them to rattler (`BAKERY_CONDA_AUTH`, `RATTLER_AUTH_FILE`).
"""

import os
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

DEFAULT_CHANNELS = ("conda-forge",)
ENV_VARIABLE = "BAKERY_CONDA_CHANNELS"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*")
_SCHEMES = ("http", "https", "file")


def configured_channels(given: Sequence[str] | None) -> tuple[str, ...]:
    """`given`, else the channels of BAKERY_CONDA_CHANNELS, else conda-forge."""
    if given is not None:
        if isinstance(given, str):
            raise TypeError(f"channels must be a list of channels, not the string {given!r}")
        return tuple(given)
    configured = os.environ.get(ENV_VARIABLE, "")
    named = tuple(part.strip() for part in configured.split(",") if part.strip())
    return named or DEFAULT_CHANNELS


def normalize_channel(text: str) -> str:
    """One spelling per channel: a name as is, a URL without its trailing slash; anything
    else, or a URL carrying credentials, raises ValueError."""
    if _NAME.fullmatch(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in _SCHEMES or not (parts.netloc or parts.path):
        raise ValueError(
            f"channel {text[:200]!r} is not a channel name (conda-forge) or an http(s):// or "
            "file:// URL"
        )
    if parts.username or parts.password:
        raise ValueError(
            f"channel {parts.scheme}://{parts.hostname}{parts.path} carries credentials in its "
            "URL, which would end up in the image's lock: give them in BAKERY_CONDA_AUTH or "
            "rattler's credentials file (RATTLER_AUTH_FILE) instead"
        )
    return text.rstrip("/")
