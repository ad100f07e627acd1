"""What the reference API fixes about access and scaling: one source for every runtime."""

from typing import Literal, get_args

AuthType = Literal["Browser", "API", "BrowserAndApi"]
AUTH_TYPES: tuple[AuthType, ...] = get_args(AuthType)
TOKEN_AUTH_TYPES: tuple[AuthType, ...] = ("API", "BrowserAndApi")
"""The auth types that check an API token: apps of these types get one (`auth()` headers)."""

DEFAULT_RPM = 60
"""The reference API's scaling policy when min != max and no rpm is given."""
