"""py-rattler's API is async; the bake is not. `run` drives a coroutine to its end from sync
code, also when the caller's thread already runs an event loop (a notebook, an async web
handler), where `asyncio.run` would refuse: then it runs on a thread of its own."""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, run on a fresh event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the common case
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1, thread_name_prefix="bakery-rattler") as thread:
        return thread.submit(asyncio.run, coroutine).result()
