"""Where the packager's messages go: the caller's `logger`, else Python logging."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger("bakery.packager")

ProgressCallback = Callable[[str, int, int], Any]
"""(stage, done, total) for a progress bar: stages are "hash" and "tar", counted in bytes."""


@dataclass
class Reporter:
    logger: Callable[[str], Any] | None = None
    progress: ProgressCallback | None = None

    def info(self, message: str) -> None:
        if self.logger:
            self.logger(message)
        else:
            _log.info(message)

    def warn(self, message: str) -> None:
        _log.warning(message)
        if self.logger:
            self.logger(f"warning: {message}")

    def advance(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)
