"""Selection for a whole environment, once per cycle, before any digest is fetched.

:func:`decide` runs selection once per (governed repository, current tag) and says which
digests the plan will need; the engine fetches those, then ``plan_environment`` turns the
same decisions into edits without selecting again. A :class:`SelectionMemo` carried from
cycle to cycle skips selection for a repository whose tag list and rule did not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from imagebot.core.gcpause import gc_paused
from imagebot.core.governing import Governance, Governed
from imagebot.core.policy import ImageRule
from imagebot.core.rewrite import Target
from imagebot.core.scan import ImageScan
from imagebot.core.selection import Decision, SelectionRule, select


def needs_digest(image: ImageRule, target: Target) -> bool:
    """Pin when the policy says so, follows digests, or the file already pins (a tag moved
    without its digest would keep running the old image)."""
    return image.digest == "pin" or image.strategy == "digest" or target.digest is not None


@dataclass(frozen=True)
class GroupDecisions:
    """Selection's answer for one governed repository: a decision per current tag."""

    governed: Governed
    by_current: Mapping[str | None, Decision]


@dataclass(frozen=True)
class Decided:
    groups: tuple[GroupDecisions, ...]
    problems: tuple[str, ...]
    """Repositories that could not be decided (their scan failed)."""
    decisions: tuple[tuple[str, str | None, Decision], ...]
    """(image, current tag, decision) in plan order, one per distinct current tag."""

    def digests_needed(
        self, scans: Mapping[str, ImageScan], *, image_digests: bool = True
    ) -> frozenset[tuple[str, str]]:
        """(repository, tag) of chosen versions whose digest the plan needs and the scan
        lacks: always for a pinned target; with ``image_digests`` also for every target that
        moves (its commit trailer and JSON record the new version's digest)."""
        needed: set[tuple[str, str]] = set()
        for group in self.groups:
            g = group.governed
            known = scans[g.repository].digests
            for _, target in g.targets:
                tag = group.by_current[target.tag].tag
                if tag is None or tag in known:
                    continue
                if needs_digest(g.rule, target) or (image_digests and tag != target.tag):
                    needed.add((g.repository, tag))
        return frozenset(needed)


class SelectionMemo:
    """Decisions kept from one cycle to the next, keyed by repository, tag-list fingerprint,
    rule and current tag. Only rules whose answer depends on nothing but the tag names are
    memoised (no ``min_age``, no build times, no digests). Entries unused for a whole cycle
    are dropped, so the memo never outgrows two cycles' worth of images."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str, SelectionRule, str | None], Decision] = {}
        self._previous: dict[tuple[str, str, SelectionRule, str | None], Decision] = {}
        self.hits = 0

    def new_cycle(self) -> None:
        self._previous, self._current = self._current, {}

    def select(
        self,
        repository: str,
        scan: ImageScan,
        rule: SelectionRule,
        current: str | None,
        now: datetime,
    ) -> Decision:
        if scan.fingerprint is None or not _names_only(rule):
            return select(scan.tags, rule, current=current, now=now)
        key = (repository, scan.fingerprint, rule, current)
        decision = self._current.get(key) or self._previous.get(key)
        if decision is None:
            decision = select(scan.tags, rule, current=current, now=now)
        else:
            self.hits += 1
        self._current[key] = decision
        return decision


def _names_only(rule: SelectionRule) -> bool:
    """Whether selection under ``rule`` reads only tag names (not first-seen or build times,
    nor digests)."""
    return rule.min_age is None and rule.strategy not in ("newest-build", "digest")


def decide(
    environment: str,
    governance: Governance,
    scans: Mapping[str, ImageScan],
    *,
    now: datetime,
    memo: SelectionMemo | None = None,
) -> Decided:
    """Select a version for every governed repository and current tag, once each."""
    memo = memo or SelectionMemo()
    groups: list[GroupDecisions] = []
    problems: list[str] = []
    decisions: list[tuple[str, str | None, Decision]] = []
    with gc_paused():  # verdicts for every tag of every image; no reference cycles
        for g in governance.groups:
            scan = scans.get(g.repository)
            if scan is None or scan.error is not None:
                reason = scan.error if scan else "not scanned"
                problems.append(f"{environment}: image {g.image} ({g.display}): {reason}")
                continue
            rule = g.rule.rule()
            by_current: dict[str | None, Decision] = {}
            for _, target in g.targets:
                if target.tag not in by_current:
                    decision = memo.select(g.repository, scan, rule, target.tag, now)
                    by_current[target.tag] = decision
                    decisions.append((g.image, target.tag, decision))
            groups.append(GroupDecisions(governed=g, by_current=by_current))
    return Decided(groups=tuple(groups), problems=tuple(problems), decisions=tuple(decisions))
