"""Build slots: at most `limit` builds run at once, at most `max_queue` wait, fairly.

A freed slot goes to the callers in turn (round robin over the callers' tokens, first come
first served within one caller), so one caller queueing many bakes cannot starve another:
with builds A1 A2 A3 from one token and B1 from another, B1 starts second. Every waiting
build hears its position (1: next to start) whenever it changes. A build that would
have to wait while `max_queue` builds wait already is refused (`QueueFull`), before anything
is done for it.
"""

import threading
from collections import OrderedDict, deque
from typing import Protocol

from stagekit.cancel import Cancelled, CancelToken

ANONYMOUS = ""
"""The caller of every call without a token (the server runs without auth): one caller."""
DEFAULT_MAX_QUEUE = 64
"""Builds that may wait for a slot (`bakery serve --max-queue`)."""


class QueueFull(Exception):
    """A new build would wait while `max_queue` builds wait already: try again later."""


class Waiter(Protocol):
    """What the slots need of a build: its cancel token, and an ear for its position."""

    cancel: CancelToken

    def queued(self, position: int) -> None: ...


class BuildSlots:
    """At most `limit` builds at once; up to `max_queue` others wait for their turn."""

    def __init__(self, limit: int, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self.running = 0
        self._turns: OrderedDict[str, deque[Waiter]] = OrderedDict()
        """Callers with waiting builds, the next to get a slot first; each caller's queue."""
        self._granted: set[Waiter] = set()
        self._told: dict[Waiter, int] = {}
        """The position each waiting build was last told."""
        self._changed = threading.Condition()

    @property
    def waiting(self) -> list[Waiter]:
        """The waiting builds in the order they will start."""
        with self._changed:
            return self._order()

    def enter(self, build: Waiter, caller: str = ANONYMOUS) -> None:
        """Queue `build` on `caller`'s turn, or give it a free slot at once; `QueueFull`
        (and nothing queued) when it would wait behind `max_queue` waiting builds."""
        with self._changed:
            waiting = sum(len(queue) for queue in self._turns.values())
            if self.running >= self.limit and waiting >= self.max_queue:
                raise QueueFull(
                    f"the server's build queue is full: {waiting} bake(s) wait for its "
                    f"{self.limit} build slot(s); retry later (the server's admin can raise "
                    "--max-queue or --max-builds)"
                )
            self._turns.setdefault(caller, deque()).append(build)
            self._grant()

    def acquire(self, build: Waiter, caller: str = ANONYMOUS) -> None:
        """Wait until `build` has its slot (entering it first, if `enter` was not called);
        `Cancelled`, out of the queue, if its token fires first."""
        with self._changed:
            if build not in self._granted and not self._queued(build):
                self.enter(build, caller)
            while build not in self._granted:
                try:
                    build.cancel.check()
                except Cancelled:
                    self._leave(build)
                    raise
                self._changed.wait(0.5)
            self._granted.discard(build)

    def release(self) -> None:
        """A build finished: its slot goes to the caller whose turn it is."""
        with self._changed:
            self.running -= 1
            self._grant()

    def _grant(self) -> None:
        while self.running < self.limit and self._turns:
            caller, queue = self._turns.popitem(last=False)
            self._granted.add(queue.popleft())
            self.running += 1
            if queue:  # the caller's next build waits for the caller's next turn
                self._turns[caller] = queue
        self._announce()
        self._changed.notify_all()

    def _queued(self, build: Waiter) -> bool:
        return any(build in queue for queue in self._turns.values())

    def _leave(self, build: Waiter) -> None:
        for caller, queue in list(self._turns.items()):
            if build in queue:
                queue.remove(build)
                if not queue:
                    del self._turns[caller]
        self._announce()

    def _order(self) -> list[Waiter]:
        """Round robin: each caller's first build in turn order, then each one's second..."""
        queues = list(self._turns.values())
        order: list[Waiter] = []
        for depth in range(max(map(len, queues), default=0)):
            order += [queue[depth] for queue in queues if depth < len(queue)]
        return order

    def _announce(self) -> None:
        """Tell each waiting build its position, if it changed since it was last told."""
        told, self._told = self._told, {}
        for position, build in enumerate(self._order(), start=1):
            self._told[build] = position
            if told.get(build) != position:
                build.queued(position)
