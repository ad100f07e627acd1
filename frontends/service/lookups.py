"""The server's cache-hit lookups: one registry lookup per request at a time, and an image
found remembered for a few seconds.

Every Bake first looks its spec's tag up (`bakery.bake.find_fresh`, a registry round trip).
When many callers send the same request at once (a CI fan-out, or Fast Bakery clients, which
send every request twice) they share one lookup, and a found image answers the same request
again without the registry for `REMEMBER_SECONDS`. The cost is that a tag removed by another
replica may still be answered for that long; this server's own Prune forgets at once. Base
tags are pinned for minutes already (`BAKERY_BASE_TAG_TTL`), so this adds little staleness.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from bakery.bake import BakeResult

REMEMBER_SECONDS = 2.0
"""How long a found image answers its request again without asking the registry."""
REMEMBERED = 4096
"""Found images kept at most (least recently found dropped first)."""


class Lookups:
    """`find(key, look)`: `look()`'s answer for `key`, shared with every concurrent caller
    of the same key, and a found result (not None) reused for REMEMBER_SECONDS."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._found: OrderedDict[str, tuple[float, BakeResult]] = OrderedDict()
        self._running: dict[str, Future[BakeResult | None]] = {}

    def remembered(self, key: str) -> BakeResult | None:
        """The image found for `key` within REMEMBER_SECONDS, if any (no lookup)."""
        with self._lock:
            found = self._found.get(key)
        if found is None or self._clock() - found[0] >= REMEMBER_SECONDS:
            return None
        return found[1]

    def find(
        self, key: str, look: Callable[[], BakeResult | None]
    ) -> tuple[BakeResult | None, bool]:
        """(the answer, whether this call looked: False when it was remembered or shared).
        `look`'s exception reaches every caller that waited for it."""
        remembered = self.remembered(key)
        if remembered is not None:
            return remembered, False
        with self._lock:
            pending = self._running.get(key)
            if pending is None:
                pending = self._running[key] = Future()
                leader = True
            else:
                leader = False
        if not leader:
            return pending.result(), False
        try:
            result = look()
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._running[key]
            if result is not None:
                self._found[key] = (self._clock(), result)
                self._found.move_to_end(key)
                while len(self._found) > REMEMBERED:
                    self._found.popitem(last=False)
        pending.set_result(result)
        return result, True

    def forget(self) -> None:
        """Drop every remembered image (tags were removed: they must be looked up again)."""
        with self._lock:
            self._found.clear()
