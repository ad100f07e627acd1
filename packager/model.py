"""The value object the packager hands to the deployer."""

from typing import NamedTuple


class PackagedCode(NamedTuple):
    """Where a code package lives (`url`) and the content key that identifies it (`key`)."""

    url: str
    key: str
