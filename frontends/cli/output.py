"""Shared CLI plumbing: turning typed errors into messages and showing progress bars.

rich is imported when something is drawn (a table, an error, a bar), not at start-up: a
command that finds everything cached prints plain lines and returns.
"""

import functools
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from stagekit.progress import Event, EventSink, Progress

if TYPE_CHECKING:
    from rich.console import Console

    from frontends.cli.bars import StageBars


@functools.cache
def console(stderr: bool = False) -> "Console":
    """The one rich console per stream (bars and log lines share stderr's)."""
    from rich.console import Console

    return Console(stderr=stderr)


_bars: "StageBars | None" = None
"""The bars being drawn, if any: log lines then go through their console, above the bars."""


def fail(error: Exception | str) -> NoReturn:
    """Print a typed error (or a message) as one readable message and exit 1 (no traceback).

    The text is escaped: messages quote logs and lists whose brackets are not markup.
    """
    from rich.markup import escape

    console(stderr=True).print(
        f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


@contextmanager
def fail_on(*errors: type[Exception]) -> Iterator[None]:
    """Inside, an error of one of these types becomes `fail(error)`."""
    try:
        yield
    except errors as error:
        fail(error)


def log_line(message: str) -> None:
    """A progress message on stderr, never wrapped (URLs and keys stay copyable) and never
    read as markup (`flask[async]` stays as written)."""
    if _bars is None:
        print(message, file=sys.stderr, flush=True)
    else:
        console(stderr=True).print(message, markup=False, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    console().print_json(json.dumps(value))


@contextmanager
def stage_bars(quiet: bool) -> Iterator[EventSink]:
    """An events sink (the stages' typed events) drawing one rich bar per stage on stderr,
    from the first progress event on (stages report from worker threads, so the bars start
    under a lock). Log lines are printed by the command's logger, not here."""
    global _bars
    if quiet:
        yield lambda _event: None
        return
    starting = threading.Lock()

    def update(event: Event) -> None:
        global _bars
        if not isinstance(event, Progress):
            return
        if _bars is None:
            with starting:
                if _bars is None:
                    from frontends.cli.bars import StageBars

                    _bars = StageBars(console(stderr=True))
        _bars.update(event)

    try:
        yield update
    finally:
        if _bars is not None:
            _bars.stop()
            _bars = None
