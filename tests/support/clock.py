"""Fake time for registry tests: a clock that only moves when told, and sleeps it records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import anyio.lowlevel


class FakeClock:
    """``now()`` for the client's clock, ``sleep()`` for its sleeps: a sleep advances the
    clock instead of waiting, and every requested wait is kept in ``sleeps``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()  # the fault proxy's threads may advance it too
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await anyio.lowlevel.checkpoint()


class SteppedClock:
    """``now()`` and ``sleep()`` for the daemon: a sleep waits until the test calls
    :meth:`advance` past its deadline, so scheduled work happens exactly when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, anyio.Event]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        event = anyio.Event()
        self._sleepers.append((self._now + timedelta(seconds=seconds), event))
        await event.wait()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        due = [(d, e) for d, e in self._sleepers if d <= self._now]
        self._sleepers = [(d, e) for d, e in self._sleepers if d > self._now]
        for _, event in due:
            event.set()
