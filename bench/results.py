"""Keeps bench/RESULTS.md: one section per benchmark, replaced in place on each run."""

import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_HEADER = (
    "# Benchmark results\n\n"
    "Each section is rewritten by its benchmark; peers ran in the same run.\n"
)


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(name: str, body: str) -> None:
    """Replace (or append) the section between this benchmark's markers."""
    text = RESULTS.read_text() if RESULTS.exists() else _HEADER
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    block = (
        f"<!-- {name}:start -->\n## {name} ({stamp}, {machine()})\n\n{body.strip()}\n"
        f"<!-- {name}:end -->\n"
    )
    pattern = re.compile(
        rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->\n", re.S
    )
    text = pattern.sub(lambda _match: block, text) if pattern.search(text) else f"{text}\n{block}"
    RESULTS.write_text(text)


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
