"""Long steps (a clone, a fetch, a tag listing, a cycle's environments) as a person at a
terminal sees them and as the logs record them.

Steps report here; the command line shows them (``imagebot.cli.progressbar``, on a terminal
only). Without a display — a daemon, a pipe, a test — a step only logs: a start event at
debug, and one at info once it is done, with how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Display(Protocol):
    """Where progress is drawn; keys are opaque, one per task."""

    def begin(self, key: object, text: str, total: int | None) -> None: ...

    def advance(self, key: object) -> None: ...

    def end(self, key: object) -> None: ...


_display: Display | None = None


def show_on(display: Display | None) -> None:
    """Draw progress on ``display`` from now on (None: draw nothing)."""
    global _display
    _display = display


@contextmanager
def step(log: Any, started: str, done: str, text: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """A step that may take a while: event ``started`` at debug, ``done`` at info with its
    ``seconds`` (and what the step added to the dict it yields) once it succeeded, and a
    spinner saying ``text`` meanwhile."""
    log.debug(started, **fields)
    began, key, display, found = time.monotonic(), object(), _display, dict[str, Any]()
    if display is not None:
        display.begin(key, text, None)
    try:
        yield found
    finally:
        if display is not None:
            display.end(key)
    log.info(done, **fields, **found, seconds=round(time.monotonic() - began, 3))


class Counter:
    """n of ``total`` things done (repositories listed, environments planned)."""

    def __init__(self, text: str, total: int) -> None:
        self._key, self._display = object(), _display
        if self._display is not None and total:
            self._display.begin(self._key, text, total)

    def advance(self) -> None:
        if self._display is not None:
            self._display.advance(self._key)

    def close(self) -> None:
        if self._display is not None:
            self._display.end(self._key)
