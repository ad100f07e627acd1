"""Where a stage's messages go: the caller's `logger`, else Python logging; and progress
bars, through a `(stage, done, total)` callback the CLI draws."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ProgressCallback = Callable[[str, int, int], Any]
"""(stage, done, total) for a progress bar; each stage says what its unit is."""


@dataclass
class Reporter:
    """Sends messages to `logger` (or the `log_name` logger) and progress to `progress`."""

    log_name: str
    logger: Callable[[str], Any] | None = None
    progress: ProgressCallback | None = None

    def info(self, message: str) -> None:
        if self.logger:
            self.logger(message)
        else:
            logging.getLogger(self.log_name).info(message)

    def warn(self, message: str) -> None:
        logging.getLogger(self.log_name).warning(message)
        if self.logger:
            self.logger(f"warning: {message}")

    def advance(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)

    def meter(self, stage: str, total: int) -> Callable[[int], None]:
        """A callback that adds its argument to `stage`'s running total and reports it."""
        done = 0

        def add(amount: int) -> None:
            nonlocal done
            done += amount
            self.advance(stage, done, total)

        return add
