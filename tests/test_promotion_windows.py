"""Promotion windows and freezes: syntax, time zones and daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagebot.core.windows import closed, parse_period

BERLIN = "Mon-Thu 09:00-16:00 Europe/Berlin"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_follows_local_wall_time_in_winter_and_summer() -> None:
    """09:00 Berlin is 08:00 UTC in winter and 07:00 UTC in summer."""
    w = parse_period(BERLIN)
    assert not w.contains(at(2026, 1, 12, 7, 59))  # Monday, CET
    assert w.contains(at(2026, 1, 12, 8, 0))
    assert not w.contains(at(2026, 7, 13, 6, 59))  # Monday, CEST
    assert w.contains(at(2026, 7, 13, 7, 0))
    assert not w.contains(at(2026, 7, 13, 14, 0)), "16:00 CEST closes"


def test_next_opening_across_the_spring_change_is_in_summer_time() -> None:
    """Closed on Friday 27 March 2026; the next opening is Monday 09:00 CEST (07:00 UTC)."""
    c = closed([parse_period(BERLIN)], [], at(2026, 3, 27, 17, 0))
    assert c is not None
    assert c.until == at(2026, 3, 30, 7, 0)
    assert c.reason == "outside the windows; next opens Mon 2026-03-30 09:00 CEST"


def test_window_past_midnight_and_day_lists() -> None:
    """ "Fri,Sat 22:00-02:00 UTC" is open late Friday and early Saturday and Sunday."""
    w = parse_period("Fri,Sat 22:00-02:00 UTC")
    assert w.contains(at(2026, 3, 6, 23, 0))  # Friday night
    assert w.contains(at(2026, 3, 7, 1, 59))  # Saturday early
    assert w.contains(at(2026, 3, 8, 1, 0))  # Sunday early, after Saturday night
    assert not w.contains(at(2026, 3, 9, 1, 0))  # Monday early
    assert not w.contains(at(2026, 3, 6, 21, 59))


def test_freeze_wins_over_a_window_and_says_until_when() -> None:
    """A dated freeze (whole days, both included) blocks even inside a window."""
    freeze = parse_period("2026-12-21 .. 2027-01-04 Europe/Berlin")
    window = parse_period("Mon-Fri 00:00-24:00 Europe/Berlin")
    c = closed([window], [freeze], at(2026, 12, 22, 10, 0))
    assert c is not None
    assert c.until == at(2027, 1, 4, 23, 0)
    assert "until Tue 2027-01-05 00:00 CET" in c.reason
    assert closed([window], [freeze], at(2027, 1, 5, 10, 0)) is None


def test_no_windows_means_always_open() -> None:
    """Without windows or freezes nothing is closed."""
    assert closed([], [], at(2026, 3, 28, 3, 0)) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Mon-Thu 09:00-16:00 Europe/Nowhere", "unknown time zone 'Europe/Nowhere'"),
        ("Mon-Tuu 09:00-16:00", "days 'Mon-Tuu' not understood"),
        ("Mon 09:00-25:00", "time '25:00' is not HH:MM"),
        ("Mon 09:00-09:00", "opens and closes at the same time"),
        ("Mon 09:00", "expected 'DAYS HH:MM-HH:MM [ZONE]'"),
        ("2026-02-30 .. 2026-03-02", "'2026-02-30' is not a calendar date"),
        ("2026-03-02 .. 2026-03-01", "ends before it starts"),
    ],
)
def test_bad_periods_say_what_is_wrong(spec: str, message: str) -> None:
    """Each malformed window or freeze is refused with a message naming the problem."""
    with pytest.raises(ValueError, match=None) as err:
        parse_period(spec)
    assert message in str(err.value)
