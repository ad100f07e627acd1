"""The one exception a caller of the bakery ever sees, and the helpers that keep it short."""

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stagekit.errors import ErrorKind

QUOTE_LIMIT = 80
"""Characters of an input an error message shows: a 100 kB input must not come back whole."""


class ImageBakingException(Exception):
    """Baking failed; the message says what went wrong and what to do about it.

    `details` carries the raw evidence (e.g. uv's full output) for logs, so the message itself
    can stay short enough for a person to read. `kind` says what the failure means to a caller
    (`stagekit.errors.ErrorKind`): bad input unless the raise says otherwise (a registry or
    index that failed is `unavailable`, a full disk `internal`, a cancelled bake `cancelled`).
    """

    kind: ErrorKind = ErrorKind.INVALID_INPUT

    def __init__(
        self, message: str, *, details: str | None = None, kind: ErrorKind | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if kind is not None:
            self.kind = kind


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to `limit` characters, with "…" where it was cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """An input as an error message shows it: its `repr` (so control characters are
    visible), cut to `limit` characters."""
    return shorten(repr(value), limit)


def is_disk_full(error: OSError) -> bool:
    """ENOSPC or EDQUOT: the filesystem (or the user's quota on it) has no room left."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def room_in(directory: Path, setting: str) -> Iterator[None]:
    """Inside, a full disk becomes an ImageBakingException naming `directory` and `setting`
    (the variable that moves it). Writers stage into temporary files and rename, so a full
    disk leaves nothing half-written behind; this only makes the failure say so."""
    try:
        yield
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise ImageBakingException(
            f"No space left in {shorten(str(directory))} ({error.strerror}): free space on "
            f"that disk, or point {setting} at one with room, then bake again. Nothing "
            "half-written was kept.",
            kind=ErrorKind.INTERNAL,
        ) from None
