"""Bakes that start together in one process (a server's pool) all find uv."""

import subprocess
import sys
from pathlib import Path

RACE = """
import threading
from bakery.lock import uv_binary

start = threading.Barrier(8)
found, errors = [], []

def find():
    start.wait()
    try:
        found.append(uv_binary())
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=find) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not errors, errors
assert len(set(found)) == 1 and len(found) == 8
"""


def test_uv_is_found_by_threads_starting_together():
    """In a fresh interpreter: sysconfig's first use is not thread-safe on Python 3.11, and
    `find_uv_bin` reads it, so concurrent first calls saw `EXE` as None."""
    subprocess.run([sys.executable, "-c", RACE], check=True, cwd=Path(__file__).parent.parent)
