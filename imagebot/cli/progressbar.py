"""Progress of a one-shot command drawn with rich on stderr — only when stderr is a
terminal, and gone once the command is done, so what stays on screen is the result."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from imagebot import progress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class RichDisplay:
    """:class:`imagebot.progress.Display` on a rich Progress."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[object, TaskID] = {}

    def begin(self, key: object, text: str, total: int | None) -> None:
        self.tasks[key] = self.bars.add_task(text, total=total)

    def advance(self, key: object) -> None:
        if key in self.tasks:
            self.bars.advance(self.tasks[key])

    def end(self, key: object) -> None:
        task = self.tasks.pop(key, None)
        if task is not None:
            self.bars.remove_task(task)


@contextmanager
def shown(stream: IO[str], *, force: bool = False) -> Iterator[None]:
    """Draw imagebot's progress on ``stream`` while the block runs, if it is a terminal
    (``force``: draw anyway, for tests)."""
    if not (force or stream.isatty()):
        yield  # rich is imported only to draw: a pipe or a cron job never pays for it
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream, force_terminal=force or None),
        transient=True,
    )
    with bars:
        progress.show_on(RichDisplay(bars))
        try:
            yield
        finally:
            progress.show_on(None)
