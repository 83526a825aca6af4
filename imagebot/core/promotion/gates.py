"""Promotion gates: what stops a version the upstream ran from being promoted.

They continue the selection chain (``imagebot.core.selection.gates.GATES``) in the order
docs/policies.md lists: hold, soak, checks, window (windows and freezes); then ``group`` (a
member waits for another) and ``approval`` (the pull request) in the decision record. Each
gate is ``(version, context) -> Rejection | None``; the next gate is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from imagebot.core.durations import format_duration
from imagebot.core.selection import Rejection
from imagebot.core.windows import Closed

from .history import Run
from .holds import Hold

#: The commit statuses of one upstream commit, as read from its forge before the cycle
#: decides: (environment, sha) -> {context: state} with states "success", "pending",
#: "failure", "error"; None when they could not be read. Without one at all, checks
#: cannot be verified and the gate blocks.
CommitStatuses = Callable[[str, str], Mapping[str, str] | None]


@dataclass(frozen=True)
class UpstreamVersion:
    """A version the upstream environment ran, and for how long at best."""

    tag: str
    digest: str | None
    commit: str  # the upstream commit that first put it there
    start: datetime
    longest: timedelta  # its longest single run so far
    running: bool


def upstream_versions(runs: Sequence[Run], now: datetime) -> list[UpstreamVersion]:
    """Each distinct (tag, digest) upstream ran, oldest first."""
    out: dict[tuple[str, str | None], UpstreamVersion] = {}
    for run in runs:
        if run.tag is None:
            continue
        key = (run.tag, run.digest)
        seen = out.get(key)
        ran = run.ran(now)
        if seen is None:
            out[key] = UpstreamVersion(
                tag=run.tag,
                digest=run.digest,
                commit=run.commit,
                start=run.start,
                longest=ran,
                running=run.stop is None,
            )
        else:
            out[key] = replace(
                seen, longest=max(seen.longest, ran), running=seen.running or run.stop is None
            )
    return list(out.values())


@dataclass(frozen=True)
class Context:
    """What every promotion gate may consult besides the version."""

    upstream: str
    soak: timedelta
    checks: Sequence[str]
    statuses: CommitStatuses | None
    closed: Closed | None  # the window or freeze closed now
    holds: Mapping[tuple[str, bool], Hold]  # by held tag and manual, in this environment
    upstream_holds: Mapping[str, Hold]  # and in the upstream one


@dataclass(frozen=True)
class Gate:
    name: str
    check: Callable[[UpstreamVersion, Context], Rejection | None]


def hold_rejection(hold: Hold) -> Rejection:
    return Rejection("hold", hold.words(), {"commit": hold.commit, "author": hold.author})


def _hold(version: UpstreamVersion, ctx: Context) -> Rejection | None:
    """A version a human rolled back from, here or upstream, is not promoted; an image held
    here (``imagebot hold``) takes no other version."""
    hold = next((h for h in ctx.holds.values() if h.blocks(version.tag)), None)
    if hold is not None:
        return hold_rejection(hold)
    hold = ctx.upstream_holds.get(version.tag)
    if hold is None or hold.manual:
        return None
    return Rejection("hold", f"in {ctx.upstream}: {hold.words()}", {"commit": hold.commit})


def _soak(version: UpstreamVersion, ctx: Context) -> Rejection | None:
    soak = ctx.soak
    if version.longest >= soak:
        return None
    ran = format_duration(version.longest)
    data = {"left_seconds": (soak - version.longest).total_seconds()}
    if version.running:
        left = format_duration(soak - version.longest)
        return Rejection(
            "soak",
            f"{version.tag} has run in {ctx.upstream} for {ran} of {format_duration(soak)}"
            f" ({left} left)",
            data,
        )
    return Rejection(
        "soak",
        f"{version.tag} ran in {ctx.upstream} for only {ran} of {format_duration(soak)}"
        " and no longer runs there",
    )


def _checks(version: UpstreamVersion, ctx: Context) -> Rejection | None:
    checks, upstream = ctx.checks, ctx.upstream
    if not checks:
        return None
    if ctx.statuses is None:
        return Rejection(
            "checks",
            f"{', '.join(checks)} cannot be verified: no forge API is configured for"
            f" {upstream}'s repository, so promotion waits",
        )
    states = ctx.statuses(upstream, version.commit)
    at = f"{upstream}@{version.commit[:12]}"
    if states is None:
        return Rejection(
            "checks", f"the statuses of {at} could not be read from the forge, so promotion waits"
        )
    failing = [f"{c}={states.get(c, 'missing')}" for c in checks if states.get(c) != "success"]
    return Rejection("checks", f"on {at}: {', '.join(failing)}") if failing else None


def _window(version: UpstreamVersion, ctx: Context) -> Rejection | None:
    closed = ctx.closed
    until = {"until": closed.until.isoformat()} if closed and closed.until else None
    return Rejection("window", closed.reason, until) if closed else None


#: The chain, in the documented order.
GATES: tuple[Gate, ...] = (
    Gate("hold", _hold),
    Gate("soak", _soak),
    Gate("checks", _checks),
    Gate("window", _window),
)


def rejection(version: UpstreamVersion, ctx: Context) -> Rejection | None:
    """The first gate that rejects ``version``, if one does."""
    for gate in GATES:
        found = gate.check(version, ctx)
        if found is not None:
            return found
    return None
