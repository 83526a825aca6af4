"""What the daemon keeps of its cycles: each environment's last cycle with its decision
records, when it runs next, and the decision changes as events (what differs between an
environment's last two records), logged — ``waiting``, ``held``, ``released``, ``promoted``,
``proposed``, ``pull_request``, ``image_error``; ``stays`` at debug — and kept for the status
page."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from imagebot import logs
from imagebot.core.promotion.record import ImageRecord

if TYPE_CHECKING:
    from imagebot.engine import EnvironmentResult

log = logs.get_logger("imagebot.daemon.decisions")

#: How many events the daemon keeps for the status page.
EVENTS_KEPT = 200


@dataclass(frozen=True)
class LastCycle:
    ok: bool
    at: datetime
    error: str | None = None
    #: the decision record of each image, as the cycle made it (kept when a cycle crashes)
    images: tuple[ImageRecord, ...] = ()
    seconds: float = 0.0  # how long the cycle took


class Decisions:
    """What ``/readyz``, the gauges and the status page read; replaced, never edited, so a
    reader in another thread sees one cycle's records or the next one's."""

    def __init__(self) -> None:
        self.last: dict[str, LastCycle] = {}
        self.next_due: dict[str, datetime] = {}
        #: the latest decision changes, oldest first
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        #: called with an environment's name when a cycle left new records (the status page)
        self.listeners: list[Callable[[str], None]] = []

    def record(
        self,
        name: str,
        ok: bool,
        now: datetime,
        error: str | None,
        result: EnvironmentResult,
        seconds: float,
    ) -> None:
        before = self.last[name].images if name in self.last else None
        self.events.extend(decision_events(before, result.images, now))
        self.last[name] = LastCycle(ok, now, error, result.images, seconds)
        for listener in self.listeners:
            listener(name)

    def crashed(self, name: str, now: datetime, error: str) -> None:
        kept = self.last[name].images if name in self.last else ()
        self.last[name] = LastCycle(False, now, error, kept)
        self.events.append(event(now, "cycle_crashed", name, "", error))

    def forget(self, name: str) -> None:
        self.last.pop(name, None)
        self.next_due.pop(name, None)


def event(now: datetime, name: str, environment: str, image: str, words: str) -> dict[str, Any]:
    return {
        "time": now.isoformat(timespec="seconds"),
        "event": name,
        "environment": environment,
        "image": image,
        "words": words,
    }


def _changes(b: ImageRecord | None, a: ImageRecord) -> list[tuple[str, str, dict[str, Any]]]:
    """(event, words, log fields) for each way ``a`` differs from ``b``, the record before."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    running = a.running.tag
    if a.commit and a.choice:  # in pull-request mode, a commit on the pull request's branch
        out.append(
            (
                "promoted" if a.publish == "commit" else "proposed",
                f"{running} → {a.choice} in {a.commit[:12]}",
                {"from": running, "to": a.choice, "commit": a.commit},
            )
        )
    elif b is not None and b.running.tag != running and not (b.commit and b.choice == running):
        how = f" ({a.running.manual})" if a.running.manual else ""
        out.append(
            (
                "promoted",
                f"{b.running.tag} → {running}{how}",
                {"from": b.running.tag, "to": running},
            )
        )
    gate = (a.waiting.gate, a.waiting.message) if a.waiting else None
    if gate and (b is None or b.waiting is None or b.waiting.gate != gate[0]):
        data = dict(a.waiting.data or {}) if a.waiting else {}
        out.append(("waiting", f"{gate[0]}: {gate[1]}", {"gate": gate[0], **data}))
    before = {(h.tag, h.commit) for h in b.holds} if b else set()
    after = {(h.tag, h.commit) for h in a.holds}
    for h in a.holds:
        if (h.tag, h.commit) not in before:
            out.append(("held", h.words(), {"version": h.tag, "author": h.author}))
    for h in b.holds if b else ():
        if (h.tag, h.commit) not in after:
            out.append(("released", f"{h.tag} no longer held", {"version": h.tag}))
    pr, was = a.pull_request, b.pull_request if b else None
    if pr and (was is None or (was.number, was.state) != (pr.number, pr.state)):
        words = f"pull request #{pr.number} {pr.state} ({pr.url})"
        out.append(("pull_request", words, {"number": pr.number, "state": pr.state}))
    if a.errors and (b is None or b.errors != a.errors):
        out.append(("image_error", "; ".join(a.errors), {}))
    return out


def decision_events(
    before: Sequence[ImageRecord] | None, after: Sequence[ImageRecord], now: datetime
) -> list[dict[str, Any]]:
    """Log every decision that changed since ``before`` (None: the first cycle) and return
    them as the page lists them."""
    earlier = {r.image: r for r in before or ()}
    out = []
    for a in after:
        found = _changes(earlier.get(a.image), a)
        if not found:
            log.debug("stays", environment=a.environment, image=a.image, version=a.running.tag)
        for name, words, fields in found:
            level = log.warning if name == "image_error" else log.info
            level(name, environment=a.environment, image=a.image, **fields)
            out.append(event(now, name, a.environment, a.image, words))
    return out
