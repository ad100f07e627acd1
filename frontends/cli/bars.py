"""Rich progress bars, one per stage: imported only once a command reports progress, so a
command that finds everything cached never loads rich.progress."""

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

from stagekit.progress import Progress as StageProgress


class _AmountColumn(ProgressColumn):
    """ "12.3/45.6 MB" for byte stages, "3/7" for counted ones."""

    def render(self, task: Task) -> Text:
        if task.fields.get("counted"):
            return Text(f"{task.completed:.0f}/{task.total or 0:.0f}")
        return DownloadColumn().render(task)


class StageBars:
    """Started on creation; `update(event)` adds a stage's bar on first sight."""

    def __init__(self, console: Console) -> None:
        columns = (
            TextColumn("{task.description:>8}"),
            BarColumn(),
            _AmountColumn(),
            TimeRemainingColumn(),
        )
        self.progress = Progress(*columns, console=console, transient=True)
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def update(self, event: StageProgress) -> None:
        if event.stage not in self.tasks:
            counted = event.unit != "bytes"
            task = self.progress.add_task(event.stage, total=event.total, counted=counted)
            self.tasks[event.stage] = task
        self.progress.update(self.tasks[event.stage], completed=event.done, total=event.total)

    def stop(self) -> None:
        self.progress.stop()
