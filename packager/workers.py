"""The packager's worker threads: named `packager-<stage>_<n>`, and shut down before a call
returns without running work still queued when the call failed or was cancelled."""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

THREAD_PREFIX = "packager-"
WORKERS = os.cpu_count() or 1


@contextmanager
def worker_pool(stage: str) -> Iterator[ThreadPoolExecutor]:
    """One thread per core; on leaving, queued tasks are dropped and running ones joined."""
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=THREAD_PREFIX + stage)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
