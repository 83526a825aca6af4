"""Selection decisions kept from one cycle to the next.

A repository whose tag list (by fingerprint) and rule did not change since the last cycle
keeps its decision, and a plan made twice in one cycle (once more after digests were
fetched) selects once. With a ``DecisionStore`` (its Protocol below) decisions also outlive the
process. Without ``keep_verdicts`` a decision keeps no per-tag verdicts: only ``--explain``
shows them, and at thousands of images they were most of a plan's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from imagebot.core.selection import (
    Decision,
    ImageScan,
    SelectionRule,
    TagInfo,
    compile_rule,
    select,
)


class DecisionStore(Protocol):
    """Decisions kept between processes (imagebot.cache)."""

    def rule_key(self, rule: SelectionRule) -> str: ...

    def decision(
        self, repository: str, rule: str, current: str | None, fingerprint: str
    ) -> tuple[str | None, str, str | None] | None: ...

    def store_decision(
        self,
        repository: str,
        rule: str,
        current: str | None,
        fingerprint: str,
        value: tuple[str | None, str, str | None],
    ) -> None: ...


class SelectionMemo:
    """Decisions kept from one cycle to the next, keyed by repository, tag-list fingerprint,
    rule and current tag. Only rules whose answer depends on nothing but the tag names are
    memoised (no ``min_age``, no build times, no digests). Entries unused for a whole cycle
    are dropped, so the memo never outgrows two cycles' worth of images."""

    def __init__(self, *, store: DecisionStore | None = None, keep_verdicts: bool = True) -> None:
        self._store = store
        self._keep_verdicts = keep_verdicts
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
            return self._select(tags, rule, current, now)
        key = (repository, scan.fingerprint, rule, current)
        decision = self._current.get(key) or self._previous.get(key)
        if decision is None and self._store is not None and not self._keep_verdicts:
            decision = self._stored(repository, scan.fingerprint, tags, rule, current, now)
        elif decision is None:
            decision = self._select(tags, rule, current, now)
        else:
            self.hits += 1
        self._current[key] = decision
        return decision

    def _select(
        self, tags: Sequence[TagInfo], rule: SelectionRule, current: str | None, now: datetime
    ) -> Decision:
        decision = select(tags, rule, current=current, now=now)
        return decision if self._keep_verdicts else replace(decision, verdicts=())

    def _stored(
        self,
        repository: str,
        fingerprint: str,
        tags: Sequence[TagInfo],
        rule: SelectionRule,
        current: str | None,
        now: datetime,
    ) -> Decision:
        """The store's decision, or a new one written to the store (verdicts are never
        stored, so only a memo without ``keep_verdicts`` reads it)."""
        assert self._store is not None
        rule_key = self._store.rule_key(rule)
        found = self._store.decision(repository, rule_key, current, fingerprint)
        if found is not None:
            self.hits += 1
            return Decision(tag=found[0], reason=found[1], verdicts=(), digest=found[2])
        decision = self._select(tags, rule, current, now)
        value = (decision.tag, decision.reason, decision.digest)
        self._store.store_decision(repository, rule_key, current, fingerprint, value)
        return decision


def _names_only(rule: SelectionRule) -> bool:
    """Whether selection under ``rule`` reads only tag names (not first-seen or build times,
    nor digests)."""
    compiled = compile_rule(rule)
    return rule.min_age is None and not compiled.needs_created and not compiled.needs_digest
