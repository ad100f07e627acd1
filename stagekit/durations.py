"""Durations as people write them (`7d`, `12h`, `90s`): one reading for options and variables."""

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*")


def parse_duration(text: str) -> int:
    """Seconds in `text`: a whole number with an optional unit s, m, h, d or w (`30m`,
    `7d`; no unit: seconds). Anything else is a ValueError that shows the accepted forms."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 7d, 12h, 30m, 90s or 3600")
    return int(match[1]) * UNITS[match[2] or "s"]
