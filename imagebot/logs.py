"""structlog set-up: readable key=value lines on a terminal, one JSON object per line otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from imagebot.redact import redact_value

LogFormat = Literal["auto", "console", "json"]


def configure(*, level: str = "info", fmt: LogFormat = "auto", stream: Any = None) -> None:
    """Route imagebot's events to ``stream`` (stderr by default); stdout stays for results."""
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(out, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
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


def _redact(logger: Any, name: str, event: Any) -> Any:
    """Every remembered secret masked in every value of the event (imagebot.redact)."""
    return redact_value(event)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
