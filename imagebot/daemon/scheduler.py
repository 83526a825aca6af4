"""When cycles run: schedules, triggers, and the rule that one environment never runs twice.

Times come from apscheduler's triggers (``IntervalTrigger`` with its jitter, ``CronTrigger``
from a crontab line), asked for the next fire time after an instant we pass in. Its
schedulers are not used: they keep their own loop and read the wall clock, where the daemon
needs one anyio loop and a clock tests can move.

The :class:`Dispatcher` takes triggers for sets of environments. An environment that is
idle is started at once, together with every other idle environment triggered meanwhile
(one cycle, so one registry scan serves them all); an environment that is running keeps at
most one pending run, started when its cycle ends — however many triggers arrived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from imagebot import logs
from imagebot.core.durations import parse_duration
from imagebot.core.policy import Schedule

log = logs.get_logger("imagebot.daemon")

DEFAULT_EVERY = timedelta(minutes=5)
MAX_DEFAULT_JITTER = timedelta(minutes=1)


class Timer(Protocol):
    """The clock the daemon reads and sleeps on; tests pass one they move by hand."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class WallTimer:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def trigger_for(schedule: Schedule, after: datetime) -> BaseTrigger:
    """The apscheduler trigger whose next fire time after ``after`` is the next run."""
    if schedule.cron is not None:
        jitter = parse_duration(schedule.jitter) if schedule.jitter else None
        minute, hour, day, month, day_of_week = schedule.cron.split()  # as from_crontab does
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=UTC,
            jitter=int(jitter.total_seconds()) if jitter else None,
        )
    every = parse_duration(schedule.every) if schedule.every else DEFAULT_EVERY
    jitter = (
        parse_duration(schedule.jitter) if schedule.jitter else min(every / 10, MAX_DEFAULT_JITTER)
    )
    return IntervalTrigger(
        seconds=every.total_seconds(),
        start_date=after,
        timezone=UTC,
        jitter=int(jitter.total_seconds()) or None,
    )


def next_run(schedule: Schedule, after: datetime) -> datetime:
    """The first run strictly after ``after``."""
    trigger = trigger_for(schedule, after)
    # A cron trigger at exactly ``after`` would fire again at once: ask from the next second.
    probe = after + timedelta(seconds=1) if schedule.cron is not None else after
    when = trigger.get_next_fire_time(after if schedule.cron is None else None, probe)
    assert isinstance(when, datetime)  # neither trigger kind has an end date
    return when


async def run_schedule(
    name: str,
    schedule: Schedule,
    *,
    timer: Timer,
    fire: Callable[[str], None],
    planned: Callable[[str, datetime], None] = lambda name, due: None,
) -> None:
    """Fire ``name`` on its schedule forever (cancel to stop); ``planned`` hears each due
    time (the status page's next cycle)."""
    due = next_run(schedule, timer.now())
    while True:
        planned(name, due)
        wait = (due - timer.now()).total_seconds()
        if wait > 0:
            await timer.sleep(wait)
        fire(name)
        # Keep the rhythm from when the run was due, unless it is already overdue.
        due = next_run(schedule, max(due, timer.now()))


CycleRunner = Callable[[list[str], str], Awaitable[None]]


class Dispatcher:
    """Starts cycles for triggered environments; see the module docstring for the rules."""

    def __init__(
        self,
        run: CycleRunner,
        *,
        max_cycles: int = 4,
        may_run: Callable[[], bool] = lambda: True,
    ) -> None:
        self._run = run
        self._limiter = anyio.CapacityLimiter(max_cycles)
        self._may_run = may_run
        self._pending: dict[str, str] = {}  # environment -> what triggered it
        self._running: set[str] = set()
        self._wake = anyio.Event()
        self._stopped = False

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def request(self, environments: Iterable[str], trigger: str) -> None:
        """Ask for a cycle of ``environments``; never blocks."""
        if self._stopped:
            return
        for env in environments:
            self._pending.setdefault(env, trigger)
        self._wake.set()

    def forget(self, environments: Iterable[str]) -> None:
        """Drop pending runs (environments removed, or leadership lost)."""
        for env in environments:
            self._pending.pop(env, None)

    def stop(self) -> None:
        """No new cycle starts after this; running ones are the caller's to cancel or await."""
        self._stopped = True
        self._pending.clear()
        self._wake.set()

    async def serve(self) -> None:
        """Start cycles until :meth:`stop`; returns once every started cycle has ended."""
        async with anyio.create_task_group() as tg:
            while not self._stopped:
                await self._wake.wait()
                self._wake = anyio.Event()
                if self._stopped:
                    break
                if not self._may_run():
                    if self._pending:
                        log.info(
                            "triggers_dropped",
                            reason="not leader",
                            environments=sorted(self._pending),
                        )
                    self._pending.clear()
                    continue
                batch = sorted(e for e in self._pending if e not in self._running)
                if not batch:
                    continue
                triggers = sorted({self._pending.pop(e) for e in batch})
                self._running.update(batch)
                tg.start_soon(self._cycle, batch, "+".join(triggers))

    async def _cycle(self, batch: list[str], trigger: str) -> None:
        try:
            async with self._limiter:
                await self._run(batch, trigger)
        finally:
            self._running.difference_update(batch)
            if self._pending:
                self._wake.set()
