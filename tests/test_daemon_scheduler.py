"""Schedules (apscheduler triggers on an injected clock) and the dispatcher's rules: one
cycle per environment at a time, at most one queued, shared cycles, bounded concurrency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from imagebot.core.policy import Schedule
from imagebot.daemon.scheduler import Dispatcher, next_run, run_schedule
from tests.support.clock import FakeClock

START = datetime(2025, 1, 1, 0, 3, 20, tzinfo=UTC)


def fire_times(schedule: Schedule, count: int) -> list[datetime]:
    clock = FakeClock(START)
    fired: list[datetime] = []

    async def main() -> None:
        with anyio.CancelScope() as scope:

            def fire(name: str) -> None:
                fired.append(clock.now())
                if len(fired) == count:
                    scope.cancel()

            await run_schedule("dev", schedule, timer=clock, fire=fire)

    anyio.run(main)
    return fired


def test_default_schedule_is_every_five_minutes_with_jitter() -> None:
    """Without a schedule, runs come every 5 minutes plus up to 30 s of jitter."""
    fired = fire_times(Schedule(), 20)
    gaps = [(b - a).total_seconds() for a, b in zip([START, *fired], fired, strict=False)]
    assert all(300 <= g <= 330 for g in gaps), gaps
    assert len({round(g, 3) for g in gaps}) > 1, "jitter spreads the runs"


def test_cron_schedule_fires_on_its_minutes_in_utc() -> None:
    """`cron: "*/10 * * * *"` fires at :10, :20, :30 — never twice for one minute."""
    fired = fire_times(Schedule(cron="*/10 * * * *"), 3)
    assert fired == [START.replace(minute=m, second=0) for m in (10, 20, 30)]


def test_every_and_explicit_jitter() -> None:
    """`every: 1h, jitter: 10s` waits one hour plus at most ten seconds."""
    when = next_run(Schedule(every="1h", jitter="10s"), START)
    assert timedelta(hours=1) <= when - START <= timedelta(hours=1, seconds=10)


class Runs:
    """A cycle runner whose cycles last until the test releases them."""

    def __init__(self) -> None:
        self.started: list[tuple[list[str], str]] = []
        self.active = 0
        self.most_active = 0
        self.release = anyio.Event()
        self.changed = anyio.Event()

    async def __call__(self, batch: list[str], trigger: str) -> None:
        self.started.append((batch, trigger))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        self._changed()
        await self.release.wait()
        self.active -= 1
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, predicate: object) -> None:
        while not predicate():  # type: ignore[operator]
            await self.changed.wait()

    def finish(self) -> None:
        self.release.set()
        self.release = anyio.Event()


def dispatch(scenario: object, *, max_cycles: int = 4, leading: bool = True) -> Runs:
    runs = Runs()
    dispatcher = Dispatcher(runs, max_cycles=max_cycles, may_run=lambda: leading)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(dispatcher.serve)
            with anyio.fail_after(5):
                await scenario(dispatcher, runs)  # type: ignore[operator]
            dispatcher.stop()
            runs.finish()

    anyio.run(main)
    return runs


def test_triggers_during_a_cycle_queue_exactly_one_more() -> None:
    """Three triggers while dev runs give one more cycle of dev, not three, and never two
    at once."""

    async def scenario(d: Dispatcher, runs: Runs) -> None:
        d.request(["dev"], "startup")
        await runs.until(lambda: runs.active == 1)
        for _ in range(3):
            d.request(["dev"], "webhook")
        assert d.pending == {"dev"}
        runs.finish()
        await runs.until(lambda: len(runs.started) == 2 and runs.active == 1)
        runs.finish()
        await runs.until(lambda: runs.active == 0)
        await anyio.wait_all_tasks_blocked()

    runs = dispatch(scenario)
    assert runs.started == [(["dev"], "startup"), (["dev"], "webhook")]
    assert runs.most_active == 1


def test_environments_triggered_together_share_one_cycle() -> None:
    """Environments triggered before the dispatcher runs go into one cycle (one scan)."""

    async def scenario(d: Dispatcher, runs: Runs) -> None:
        d.request(["staging", "dev"], "webhook")
        d.request(["prod"], "schedule")
        await runs.until(lambda: runs.active == 1)
        runs.finish()
        await runs.until(lambda: runs.active == 0)

    runs = dispatch(scenario)
    assert runs.started == [(["dev", "prod", "staging"], "schedule+webhook")]


def test_concurrency_is_bounded() -> None:
    """With max_cycles=1 a second environment's cycle waits for the first to end."""

    async def scenario(d: Dispatcher, runs: Runs) -> None:
        d.request(["dev"], "schedule")
        await runs.until(lambda: runs.active == 1)
        d.request(["prod"], "schedule")
        await anyio.wait_all_tasks_blocked()
        assert len(runs.started) == 1
        runs.finish()
        await runs.until(lambda: len(runs.started) == 2)
        runs.finish()
        await runs.until(lambda: runs.active == 0)

    runs = dispatch(scenario, max_cycles=1)
    assert [b for b, _ in runs.started] == [["dev"], ["prod"]]
    assert runs.most_active == 1


def test_a_follower_drops_triggers() -> None:
    """When this replica does not lead, triggers are dropped, not queued."""

    async def scenario(d: Dispatcher, runs: Runs) -> None:
        d.request(["dev"], "webhook")
        await anyio.wait_all_tasks_blocked()
        assert d.pending == frozenset()

    assert dispatch(scenario, leading=False).started == []


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("{every: 5m, cron: '* * * * *'}", "either `every` or `cron`"),
        ("{cron: '*/99 * * * *'}", "invalid cron expression"),
        ("{every: 0s}", "longer than zero"),
        ("{every: soon}", "invalid duration"),
    ],
)
def test_bad_schedules_name_file_line_and_field(schedule: str, message: str) -> None:
    """A bad schedule is a policy problem naming file, line and field."""
    from imagebot.core.policy_file import parse_policy
    from imagebot.errors import PolicyError

    text = (
        "environment: dev\nrepo: {url: ./x}\n"
        f"schedule: {schedule}\n"
        "images: [{name: app, repository: nginx}]\n"
    )
    with pytest.raises(PolicyError) as err:
        parse_policy(text, source="policies/dev.yaml")
    assert err.value.problems[0].startswith("policies/dev.yaml:3: schedule")
    assert message in err.value.problems[0]
