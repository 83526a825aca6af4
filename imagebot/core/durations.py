"""Durations as people write them in policy files: ``90s``, ``15m``, ``1h30m``, ``2d``, ``1w``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration with day and week units; raise ValueError naming the text."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 90s, 15m, 1h30m, 2d, 1w)")
    return timedelta(seconds=total)


def _checked(text: str) -> str:
    parse_duration(text)
    return text


#: A duration as a policy file writes it (``2d``), checked where it is written.
Duration = Annotated[str, AfterValidator(_checked)]


def format_duration(value: timedelta) -> str:
    """The shortest ``1d2h3m4s`` form of a duration."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
