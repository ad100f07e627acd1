"""Cancellation as the packager takes it (`cancel=` a token, or `timeout=` seconds) and
reports it (a `CodePackagingException` of kind cancelled or deadline_exceeded).

The work checks the token between files, batches and archive members, in every worker
thread; what stops there leaves only what its `finally` blocks remove: no object in the
store, no temporary file in the store or the cache.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from packager.errors import CodePackagingException
from stagekit.cancel import Cancelled, CancelToken


def cancel_token(cancel: Any = None, timeout: Any = None) -> CancelToken:
    """The token the work checks: the caller's `cancel`, one whose deadline is `timeout`
    seconds from now, or one that never fires."""
    if cancel is not None and timeout is not None:
        raise CodePackagingException(
            "give cancel= or timeout=, not both: a token with a deadline is "
            "CancelToken.after(seconds)"
        )
    if cancel is not None:
        if not isinstance(cancel, CancelToken):
            raise CodePackagingException(
                f"cancel must be a stagekit.cancel.CancelToken, got {type(cancel).__name__}"
            )
        return cancel
    if timeout is None:
        return CancelToken()
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise CodePackagingException(
            f"timeout must be a number of seconds (0 or more), got {timeout!r}"
        )
    return CancelToken.after(timeout)


@contextmanager
def reported(doing: str) -> Iterator[None]:
    """Inside, a `Cancelled` becomes a CodePackagingException saying what was stopped."""
    try:
        yield
    except Cancelled as stop:
        raise CodePackagingException(f"{doing} stopped: {stop.message}", kind=stop.kind) from stop
