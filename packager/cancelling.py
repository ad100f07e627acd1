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
from stagekit.cancel import Cancelled, CancelToken, token_from


def cancel_token(cancel: Any = None, timeout: Any = None) -> CancelToken:
    """The token the work checks (`stagekit.cancel.token_from`), bad options refused."""
    try:
        return token_from(cancel, timeout)
    except ValueError as exc:
        raise CodePackagingException(str(exc)) from None


@contextmanager
def reported(doing: str) -> Iterator[None]:
    """Inside, a `Cancelled` becomes a CodePackagingException saying what was stopped."""
    try:
        yield
    except Cancelled as stop:
        raise CodePackagingException(f"{doing} stopped: {stop.message}", kind=stop.kind) from stop
