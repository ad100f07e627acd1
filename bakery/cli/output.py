"""Shared CLI plumbing: turning typed errors into messages and showing progress bars."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

err = Console(stderr=True)
out = Console()


def fail(error: Exception | str) -> NoReturn:
    """Print a typed error (or a message) as one readable message and exit 1 (no traceback).

    The text is escaped: messages quote logs and lists whose brackets are not markup.
    """
    err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
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
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value))


BYTE_STAGES = {"hash", "tar", "download", "upload"}
"""Stages whose progress counts bytes; every other stage counts items."""


class _AmountColumn(ProgressColumn):
    """ "12.3/45.6 MB" for byte stages, "3/7" for counted ones."""

    def render(self, task: Task) -> Text:
        if task.fields.get("counted"):
            return Text(f"{task.completed:.0f}/{task.total or 0:.0f}")
        return DownloadColumn().render(task)


@contextmanager
def byte_progress(quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A (stage, done, total) callback drawing one rich bar per stage on stderr."""
    if quiet:
        yield lambda _stage, _done, _total: None
        return
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        _AmountColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bars:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total, counted=stage not in BYTE_STAGES)
            bars.update(tasks[stage], completed=done, total=total)

        yield update
