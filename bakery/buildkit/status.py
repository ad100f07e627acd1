"""BuildKit's Status stream as Bakery's progress events, and a failed build as a typed error.

Each step (vertex) that starts is a log line, each that completes advances the `build` stage,
the steps' output becomes log lines; the last `TAIL_LINES` lines of every step are kept so a
failure can name the step and show what it printed.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bakery.errors import ImageBakingException
from stagekit.errors import ErrorKind
from stagekit.progress import Reporter

TAIL_LINES = 50
"""Lines of a failed step's log an error shows."""
STAGE = "build"


@dataclass
class StatusTracker:
    """Feed it every StatusResponse (`update`); `failure` explains a failed solve."""

    reporter: Reporter
    what: str
    """What is being built, for messages ("the sdist of docopt 0.6.2")."""
    names: dict[str, str] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    cached: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    logs: dict[str, deque[str]] = field(default_factory=dict)
    _partial: dict[str, str] = field(default_factory=dict)

    def update(self, message: Any) -> None:
        for vertex in message.vertexes:
            digest = vertex.digest
            self.names[digest] = vertex.name or self.names.get(digest, digest)
            if (vertex.HasField("started") or vertex.cached) and digest not in self.started:
                self.started.add(digest)
                cached = " (cached)" if vertex.cached else ""
                self.reporter.info(f"BuildKit: {vertex.name}{cached}")
            if vertex.cached:
                self.cached.add(digest)
            if vertex.error:
                self.errors[digest] = vertex.error
            if vertex.HasField("completed") and digest not in self.completed:
                self.completed.add(digest)
                self.reporter.advance(STAGE, len(self.completed), len(self.names))
        for log in message.logs:
            text = self._partial.pop(log.vertex, "") + log.msg.decode(errors="replace")
            *lines, rest = text.split("\n")
            if rest:
                self._partial[log.vertex] = rest
            tail = self.logs.setdefault(log.vertex, deque(maxlen=TAIL_LINES))
            for line in lines:
                tail.append(line.rstrip("\r"))
                self.reporter.info(f"  {line.rstrip()}")

    def tail(self, digest: str) -> list[str]:
        lines = list(self.logs.get(digest, ()))
        if digest in self._partial:
            lines.append(self._partial[digest])
        return lines[-TAIL_LINES:]

    def failure(self, error: str, hint: str = "") -> ImageBakingException:
        """The typed error for a solve that failed with `error`: the step that failed, its
        error and the last lines of its log."""
        failed = next(iter(self.errors), None)
        step = self.names.get(failed, "") if failed else ""
        lines = self.tail(failed) if failed else []
        message = f"Building {self.what} failed in BuildKit"
        message += f" at step {step!r}: " if step else ": "
        message += (self.errors.get(failed, "") if failed else "") or error
        if lines:
            message += f"\nLast {len(lines)} lines of its log:\n" + "\n".join(lines)
        if hint:
            message += f"\n{hint}"
        details = "\n".join(
            f"[{self.names.get(d, d)}]\n" + "\n".join(self.tail(d)) for d in self.logs
        )
        return ImageBakingException(message, details=details or None, kind=ErrorKind.INVALID_INPUT)
