"""Where a stage's messages and progress go, as typed events.

A stage reports through a `Reporter`: messages go to the caller's `logger` (else Python
logging), and every message and progress step is also a typed event (`Progress`, `LogLine`)
for an `events` sink. The CLI's bars and a service's event stream consume the same events;
the older `(stage, done, total)` callback keeps working beside them.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["bytes", "items"]

STAGE_UNITS: dict[str, Unit] = {
    "hash": "bytes",
    "tar": "bytes",
    "download": "bytes",
    "upload": "bytes",
}
"""What each stage's progress counts; a stage not listed counts items (e.g. layers built)."""

ProgressCallback = Callable[[str, int, int], Any]
"""(stage, done, total) for a progress bar: the callback `progress=` options take."""


@dataclass(frozen=True)
class Progress:
    """How far one stage is: `done` of `total` in `unit`."""

    stage: str
    unit: Unit
    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class LogLine:
    """A message a stage reports; `warning` for what the caller should act on."""

    message: str
    warning: bool = False


Event = Progress | LogLine
EventSink = Callable[[Event], Any]


def unit_of(stage: str) -> Unit:
    return STAGE_UNITS.get(stage, "items")


@dataclass
class Reporter:
    """Sends messages to `logger` (or the `log_name` logger), progress to `progress`, and
    both as events to `events`."""

    log_name: str
    logger: Callable[[str], Any] | None = None
    progress: ProgressCallback | None = None
    events: EventSink | None = None

    def info(self, message: str) -> None:
        if self.logger:
            self.logger(message)
        else:
            logging.getLogger(self.log_name).info(message)
        if self.events:
            self.events(LogLine(message))

    def warn(self, message: str) -> None:
        logging.getLogger(self.log_name).warning(message)
        if self.logger:
            self.logger(f"warning: {message}")
        if self.events:
            self.events(LogLine(message, warning=True))

    def advance(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)
        if self.events:
            self.events(Progress(stage, unit_of(stage), done, total))

    def meter(self, stage: str, total: int) -> Callable[[int], None]:
        """A callback that adds its argument to `stage`'s running total and reports it."""
        done = 0

        def add(amount: int) -> None:
            nonlocal done
            done += amount
            self.advance(stage, done, total)

        return add
