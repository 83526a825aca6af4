"""structlog set-up: readable lines on a terminal, one JSON object per line otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Set
from typing import Any, Literal

import structlog

from imagebot.redact import redact_value

LogFormat = Literal["auto", "console", "json"]


def configure(
    *,
    level: str = "info",
    fmt: LogFormat = "auto",
    stream: Any = None,
    reported: Set[str] = frozenset(),
) -> None:
    """Route imagebot's events to ``stream`` (stderr by default); stdout stays for results.

    Events named in ``reported`` are dropped: a one-shot command prints what they say
    itself, once, as an ``error:`` line, so logging them too would say it twice."""
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(out, "isatty", lambda: False)() else "json"

    def drop_reported(_: Any, __: str, event: Any) -> Any:
        if event.get("event") in reported:
            raise structlog.DropEvent
        return event

    renderer: Any = (
        _human if fmt == "console" else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            drop_reported,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def _human(_: Any, __: str, event: dict[str, Any]) -> str:
    """``warning: push_race environment=dev attempt=1`` — a line a person reads."""
    level = event.pop("level", "info")
    event.pop("timestamp", None)
    name = event.pop("event", "")
    text = event.pop("exception", None)
    fields = " ".join(
        f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in event.items()
    )
    line = f"{level}: {name}" + (f" {fields}" if fields else "")
    return f"{line}\n{text}" if text else line


def _redact(logger: Any, name: str, event: Any) -> Any:
    """Every remembered secret masked in every value of the event (imagebot.redact)."""
    return redact_value(event)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
