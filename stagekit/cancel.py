"""Cancellation and deadlines for long work: one token checked where work can stop.

A caller (a service whose client went away, a CLI on Ctrl-C, a deadline) cancels a token;
the stage's threads call `check()` between units of work and stop with `Cancelled`.
Stages write their results atomically (temp + rename, tag written last), so work that stops
at a check leaves no partial cache entry, blob or tag behind.
"""

import threading
import time
from collections.abc import Callable

from stagekit.errors import ErrorKind


class Cancelled(Exception):
    """The work was cancelled or ran past its deadline; `kind` says which."""

    def __init__(self, message: str, kind: ErrorKind) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class CancelToken:
    """Cancelled by `cancel()`, or by itself once `deadline` (a `time.monotonic()` value)
    has passed."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._cancelled = threading.Event()
        self._reason = ""
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []

    @classmethod
    def after(cls, seconds: float | None) -> "CancelToken":
        """A token whose deadline is `seconds` from now (None: no deadline)."""
        return cls(None if seconds is None else time.monotonic() + seconds)

    def cancel(self, reason: str = "cancelled by the caller") -> None:
        """Cancel the work; the first reason given is the one reported."""
        with self._lock:
            if self._cancelled.is_set():
                return
            self._reason = reason
            self._cancelled.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback` once `cancel()` is called, in the cancelling thread (at once if
        it was already): how work blocked in a call that checks nothing (a network call)
        hears of it. Deadlines do not call it: give such calls the deadline as a timeout.
        Returns the function that unregisters it."""
        with self._lock:
            registered = not self._cancelled.is_set()
            if registered:
                self._callbacks.append(callback)
        if not registered:
            callback()

        def forget() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return forget

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less when the deadline comes first; wake on `cancel()`.
        True if the work should stop (`check()` says why)."""
        self._cancelled.wait(self.remaining(seconds))
        return self.cancelled

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set() or self._expired()

    def check(self) -> None:
        """Raise `Cancelled` if the work should stop here."""
        if self._cancelled.is_set():
            raise Cancelled(self._reason, ErrorKind.CANCELLED)
        if self._expired():
            raise Cancelled(
                "the deadline passed before the work finished", ErrorKind.DEADLINE_EXCEEDED
            )

    def remaining(self, at_most: float) -> float:
        """Seconds left before the deadline, capped at `at_most` (a subprocess's timeout)."""
        if self.deadline is None:
            return at_most
        return max(0.0, min(at_most, self.deadline - time.monotonic()))

    def _expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def token_from(cancel: object = None, timeout: object = None) -> CancelToken:
    """The token a stage's `cancel=` / `timeout=` options ask for: the caller's token, one
    whose deadline is `timeout` seconds from now, or one that never fires. Bad values are a
    ValueError, which each stage reports as its own typed error."""
    if cancel is not None and timeout is not None:
        raise ValueError(
            "give cancel= or timeout=, not both: a token with a deadline is "
            "CancelToken.after(seconds)"
        )
    if cancel is not None:
        if not isinstance(cancel, CancelToken):
            raise ValueError(
                f"cancel must be a stagekit.cancel.CancelToken, got {type(cancel).__name__}"
            )
        return cancel
    if timeout is None:
        return CancelToken()
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds (0 or more), got {timeout!r}")
    return CancelToken.after(timeout)
