"""Selection decisions kept from one cycle to the next.

A repository whose tag list (by fingerprint) and rule did not change since the last cycle
keeps its decision, and a plan made twice in one cycle (once more after digests were
fetched) selects once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from imagebot.core.scan import ImageScan
from imagebot.core.selection import Decision, SelectionRule, TagInfo, select


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
        tags: Sequence[TagInfo],
        rule: SelectionRule,
        current: str | None,
        now: datetime,
    ) -> Decision:
        """``select(tags, rule, ...)``, or its answer from this cycle or the last one when
        ``scan``'s fingerprint, ``rule`` and ``current`` are the same."""
        if scan.fingerprint is None or not _names_only(rule):
            return select(tags, rule, current=current, now=now)
        key = (repository, scan.fingerprint, rule, current)
        decision = self._current.get(key) or self._previous.get(key)
        if decision is None:
            decision = select(tags, rule, current=current, now=now)
        else:
            self.hits += 1
        self._current[key] = decision
        return decision


def _names_only(rule: SelectionRule) -> bool:
    """Whether selection under ``rule`` reads only tag names (not first-seen or build times,
    nor digests)."""
    return rule.min_age is None and not rule.needs_created and not rule.needs_digest
