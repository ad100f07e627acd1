"""Acting at a known point of running work: its first progress event of a stage (the build
phase of a bake is its "download" stage; a remote package's upload is "upload")."""

import threading
from collections.abc import Callable

from stagekit.cancel import CancelToken
from stagekit.progress import Event, EventSink, Progress


def at_first(stage: str, action: Callable[[], object]) -> EventSink:
    """An `events` sink that runs `action` once, in the reporting thread, at the first
    progress of `stage` (the work waits until it returns)."""
    done = threading.Event()

    def events(event: Event) -> None:
        if isinstance(event, Progress) and event.stage == stage and not done.is_set():
            done.set()
            action()

    return events


def cancel_when(
    stage: str, token: CancelToken, hold: bool = False
) -> tuple[EventSink, threading.Thread]:
    """An `events` sink and a thread that cancels `token` (from that other thread) once
    progress of `stage` arrives. With `hold`, the work waits in that first event until the
    token is cancelled."""
    started, cancelled = threading.Event(), threading.Event()

    def reached() -> None:
        started.set()
        if hold:
            cancelled.wait(600)

    def cancel() -> None:
        started.wait(600)
        token.cancel("the test cancelled it")
        cancelled.set()

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    return at_first(stage, reached), thread
