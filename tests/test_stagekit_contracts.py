"""The contracts stages share with their front-ends: typed events, cancellation, error kinds."""

import threading
import time

import pytest

from stagekit.cancel import Cancelled, CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import LogLine, Progress, Reporter


def test_a_reporter_sends_typed_events_beside_the_logger_and_the_callback():
    events, lines, ticks = [], [], []
    reporter = Reporter("test", lines.append, lambda *tick: ticks.append(tick), events.append)
    reporter.info("resolving")
    reporter.warn("slow index")
    add = reporter.meter("download", 300)
    add(100)
    add(200)
    reporter.advance("layers", 1, 4)
    assert events == [
        LogLine("resolving"),
        LogLine("slow index", warning=True),
        Progress("download", "bytes", 100, 300),
        Progress("download", "bytes", 300, 300),
        Progress("layers", "items", 1, 4),
    ]
    assert lines == ["resolving", "warning: slow index"]
    assert ticks == [("download", 100, 300), ("download", 300, 300), ("layers", 1, 4)]


def test_a_cancelled_token_stops_work_at_its_next_check():
    token = CancelToken()
    token.check()
    token.cancel("the client went away")
    assert token.cancelled
    with pytest.raises(Cancelled, match="the client went away") as caught:
        token.check()
    assert caught.value.kind is ErrorKind.CANCELLED


def test_the_first_reason_stays_and_callbacks_run_once_in_the_cancelling_thread():
    token = CancelToken()
    heard: list[str] = []
    token.on_cancel(lambda: heard.append(threading.current_thread().name))
    forget = token.on_cancel(lambda: heard.append("forgotten"))
    forget()
    canceller = threading.Thread(target=token.cancel, args=("first",), name="canceller")
    canceller.start()
    canceller.join()
    token.cancel("second")
    assert heard == ["canceller"]
    with pytest.raises(Cancelled, match="first"):
        token.check()
    token.on_cancel(lambda: heard.append("late"))  # a cancelled token calls back at once
    assert heard == ["canceller", "late"]


def test_wait_wakes_on_cancel_from_another_thread():
    token = CancelToken()
    assert not token.wait(0)
    threading.Thread(target=token.cancel).start()
    assert token.wait(600)  # returns when cancelled, long before the 600 s
    assert CancelToken.after(0).wait(600)  # a passed deadline does not sleep at all


def test_a_deadline_cancels_by_itself():
    token = CancelToken.after(0.01)
    time.sleep(0.02)
    with pytest.raises(Cancelled) as caught:
        token.check()
    assert caught.value.kind is ErrorKind.DEADLINE_EXCEEDED
    assert not CancelToken.after(None).cancelled
