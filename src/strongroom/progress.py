"""Progress bars on stderr for long commands: rich bars behind the callbacks ingest, the
pipeline and export accept.

Shared by `cli` and `demo` (it used to live in `cli`, which made `demo` import `cli` back).
rich is imported when a bar is made, so importing this module stays cheap. A bar draws only
when enabled and stderr is a terminal: `--json` output and pipes stay clean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress


def transfer_bar(enabled: bool) -> RichProgress:
    """Bytes moved: files, MB, MB/s and time left (ingest, verify, export)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.fields[files]}"), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=console, disable=not (enabled and console.is_terminal),
        transient=False,
    )


def count_bar(enabled: bool) -> RichProgress:
    """Items done out of a total, with time elapsed and left (the pipeline)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[files]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not (enabled and console.is_terminal),
    )


class IngestBar:
    """Adapts the ingestor's progress callbacks to a rich bar (files, bytes, MB/s, ETA)."""

    def __init__(self, bar: RichProgress, label: str) -> None:
        self.bar, self.label = bar, label
        self.task = bar.add_task(label, total=None, files="")
        self.files = self.done = 0

    def start(self, files: int, total_bytes: int) -> None:
        self.files = files
        self.bar.update(self.task, total=total_bytes, files=f"0/{files} files")

    def advance(self, nbytes: int) -> None:
        self.bar.advance(self.task, nbytes)

    def file_done(self) -> None:
        self.done += 1
        self.bar.update(self.task, files=f"{self.done}/{self.files} files")


class ProcessBar:
    """Adapts the pipeline runner's callbacks to a rich bar (originals done, errors)."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task = bar.add_task("process", total=None, files="")
        self.errors = 0

    def start(self, tasks: int) -> None:
        self.bar.update(self.task, total=tasks, files=f"0/{tasks} originals")

    def task_done(self, sha256: str, outcomes: list[Any]) -> None:
        self.errors += sum(1 for o in outcomes if o.status == "error")
        self.bar.advance(self.task, 1)
        t = self.bar.tasks[self.task]
        self.bar.update(self.task, files=f"{int(t.completed)}/{int(t.total or 0)} originals, "
                                         f"{self.errors} error(s)")


class ExportBar:
    """Adapts export's callbacks to a rich bar (bytes written into the bag)."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task = bar.add_task("export", total=None, files="")

    def start(self, files: int, total_bytes: int) -> None:
        self.bar.update(self.task, total=total_bytes, files=f"{files} files")

    def advance(self, nbytes: int) -> None:
        self.bar.advance(self.task, nbytes)
