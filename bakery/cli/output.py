"""Shared CLI plumbing: turning typed errors into messages and showing progress bars."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
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


def fail(error: Exception) -> NoReturn:
    """Print a typed error as one readable message and exit 1 (no traceback)."""
    err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def log_line(message: str) -> None:
    """A progress message on stderr, never wrapped (URLs and keys stay copyable)."""
    err.print(message, highlight=False, soft_wrap=True)


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
