"""Promotion windows and freezes: when an environment may take a new version.

Two forms, both in the wall-clock time of a named zone (IANA, via zoneinfo; UTC when none
is given), so a window means the same hours in summer and in winter:

- weekly: ``"Mon-Thu 09:00-16:00 Europe/Berlin"``, ``"Sat,Sun 00:00-24:00"``, ``"daily
  22:00-06:00 UTC"`` (an end before the start runs past midnight into the next day);
- dated: ``"2026-12-20 .. 2027-01-04 Europe/Berlin"`` (whole days, both included) or
  ``"2026-12-20 18:00 .. 2027-01-04 08:00 Europe/Berlin"``.

Pure: callers pass ``now`` (an aware datetime).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY = "|".join(DAY_NAMES)
_DAYS = re.compile(rf"^(?:daily|(?:{_DAY})(?:-(?:{_DAY}))?(?:,(?:{_DAY})(?:-(?:{_DAY}))?)*)$")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Weekly:
    """Open on ``days`` (0 = Monday) from ``start`` to ``end`` minutes after local midnight."""

    text: str
    days: frozenset[int]
    start: int
    end: int
    zone: ZoneInfo

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        if self.start < self.end:
            return today in self.days and self.start <= minute < self.end
        # Runs past midnight: the evening of a listed day and the morning after it.
        return (today in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )

    def next_start(self, now: datetime) -> datetime:
        """The first opening strictly after ``now``."""
        local_day = now.astimezone(self.zone).date()
        for offset in range(9):
            day = local_day + timedelta(days=offset)
            if day.weekday() in self.days:
                opening = _at(day, self.start, self.zone)
                if opening > now:
                    return opening
        raise AssertionError("a weekly window opens within 8 days")  # pragma: no cover

    def next_end(self, now: datetime) -> datetime:
        """When the opening that holds ``now`` closes (``now`` must be inside)."""
        local_day = now.astimezone(self.zone).date()
        for offset in range(-1, 9):
            day = local_day + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opening = _at(day, self.start, self.zone)
            close_day = day if self.start < self.end else day + timedelta(days=1)
            closing = _at(close_day, self.end, self.zone)
            if opening <= now < closing:
                return closing
        raise AssertionError("next_end called outside the window")  # pragma: no cover


@dataclass(frozen=True)
class Dated:
    """Open from ``start`` (included) to ``end`` (excluded)."""

    text: str
    start: datetime
    end: datetime
    zone: ZoneInfo

    def contains(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def next_start(self, now: datetime) -> datetime | None:
        return self.start if self.start > now else None

    def next_end(self, now: datetime) -> datetime:
        return self.end


Period = Weekly | Dated


def _at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """Local ``day`` at ``minutes`` past midnight in ``zone``, as a UTC time (24:00 is the
    next midnight; a time skipped by a DST change lands on the same wall time's offset)."""
    local = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minutes)
    # Adding a timedelta to an aware datetime keeps the wall clock, so re-attach the zone to
    # get the offset of the new wall time, not the one of midnight.
    local = local.replace(tzinfo=None).replace(tzinfo=zone)
    return local.astimezone(UTC)


def _zone(text: str, spec: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{spec!r}: unknown time zone {text!r} (use an IANA name such as Europe/Berlin or UTC)"
        ) from None


def _days(text: str, spec: str) -> frozenset[int]:
    if not _DAYS.match(text):
        raise ValueError(
            f"{spec!r}: days {text!r} not understood (e.g. Mon-Fri, Sat,Sun, Mon, daily)"
        )
    if text == "daily":
        return frozenset(range(7))
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        out.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(out)


def _minutes(text: str, spec: str) -> int:
    m = _HHMM.match(text)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"{spec!r}: time {text!r} is not HH:MM (00:00 to 24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


def _moment(words: list[str], zone: ZoneInfo, spec: str, *, end: bool) -> datetime:
    if not words or len(words) > 2 or not _DATE.match(words[0]):
        raise ValueError(f"{spec!r}: expected a date YYYY-MM-DD, optionally with HH:MM")
    try:
        day = date.fromisoformat(words[0])
    except ValueError:
        raise ValueError(f"{spec!r}: {words[0]!r} is not a calendar date") from None
    if len(words) == 2:
        return _at(day, _minutes(words[1], spec), zone)
    # A date alone means the whole day: an end date is included.
    return _at(day + timedelta(days=1) if end else day, 0, zone)


def parse_period(spec: str) -> Period:
    """Parse one window or freeze; raise ValueError saying what is wrong with it."""
    words = spec.split()
    zone = ZoneInfo("UTC")
    if words and words[-1][0].isalpha() and not _DAYS.match(words[-1]):
        zone = _zone(words.pop(), spec)
    if ".." in words:
        i = words.index("..")
        start = _moment(words[:i], zone, spec, end=False)
        stop = _moment(words[i + 1 :], zone, spec, end=True)
        if stop <= start:
            raise ValueError(f"{spec!r}: ends before it starts")
        return Dated(text=spec, start=start, end=stop, zone=zone)
    if len(words) != 2 or "-" not in words[1]:
        raise ValueError(
            f"{spec!r}: expected 'DAYS HH:MM-HH:MM [ZONE]' (e.g. 'Mon-Thu 09:00-16:00"
            " Europe/Berlin') or 'YYYY-MM-DD [HH:MM] .. YYYY-MM-DD [HH:MM] [ZONE]'"
        )
    first, _, last = words[1].partition("-")
    opens, closes = _minutes(first, spec), _minutes(last, spec)
    if opens == closes:
        raise ValueError(f"{spec!r}: opens and closes at the same time")
    return Weekly(text=spec, days=_days(words[0], spec), start=opens, end=closes, zone=zone)


@dataclass(frozen=True)
class Closed:
    """Why promotion is not allowed now, and when it may be again (None: not foreseeable)."""

    reason: str
    until: datetime | None


def closed(windows: Sequence[Period], freezes: Sequence[Period], now: datetime) -> Closed | None:
    """None when ``now`` is inside a window (or there are none) and outside every freeze."""
    for freeze in freezes:
        if freeze.contains(now):
            until = freeze.next_end(now)
            return Closed(f"freeze {freeze.text!r} until {_show(until, freeze)}", until)
    if not windows or any(w.contains(now) for w in windows):
        return None
    starts = [(s, w) for w in windows if (s := w.next_start(now)) is not None]
    if not starts:
        return Closed("outside every window, and none opens again", None)
    start, window = min(starts, key=lambda pair: pair[0])
    return Closed(f"outside the windows; next opens {_show(start, window)}", start)


def _show(moment: datetime, period: Period) -> str:
    local = moment.astimezone(period.zone)
    return f"{DAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"
