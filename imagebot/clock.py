"""Time as a dependency: whatever reads the clock or sleeps takes a ``Clock`` and a ``Sleep``,
so tests hand in fake time instead of waiting for real time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    """The wall clock, timezone-aware in UTC: the default ``Clock``."""
    return datetime.now(UTC)
