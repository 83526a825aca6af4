"""The gates every tag passes, in three passes over the list.

1. filters: ignore list, include, exclude, build tags; yields the value to read.
2. strategy: reading the value, then (semver) partial, prerelease, variant, range, allow, and
   downgrade against the running version.
3. time: creation time for newest-build, minimum age; then downgrade for newest-build.

A tag's reason is the first gate it fails. Each pass runs only the gates the rule switches on,
and the loops keep everything in locals: choosing from 100,000 tags has a budget of 100 ms,
about a microsecond per tag, which leaves no room for a function call per gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import compress, repeat
from operator import gt, lt
from typing import Any

from .compiled import CompiledRule
from .rule import TagInfo
from .semver_tags import SemverTag
from .strategies import EMPTY_VALUE, Reader, Unreadable
from .tag_kinds import build_tag_kind, classify_all

#: One per input tag: None while the tag is still a candidate, else why it was rejected.
Reasons = list[str | None]
#: (ordering key, index into the input) of tags that passed so far. Pass 2 keeps only those
#: tied for the best key unless pass 3 must still judge them all (min_age, newest-build):
#: collecting every survivor of 100,000 tags cost more than the comparisons that avoid it.
Candidates = list[tuple[Any, int]]

ONLY_IF_ASKED = "chosen only when include asks for it"
_MISSING: Any = object()


class _Rejected(str):
    """A filter outcome that is a rejection reason, told apart from a value by its type."""

    __slots__ = ()


MEMO_LIMIT = 1_000_000


@dataclass(frozen=True)
class Running:
    """The running tag as the rule reads it: the base for downgrade, allow and variant."""

    tag: str | None
    key: Any
    semver: SemverTag | None


def filter_pass(names: list[str], compiled: CompiledRule, reasons: Reasons) -> list[str | None]:
    """Pass 1: the value each tag is read as (None once rejected).

    A tag listed twice gets the same verdict twice; registries list each tag once, and
    checking every list for repeats would cost a tenth of the budget.
    """
    rule = compiled.rule
    include, exclude, extract = compiled.include, compiled.exclude, compiled.extract
    ignore_tags, ignore_globs = compiled.ignore_tags, compiled.ignore_globs
    kinds_first = include is None and rule.strategy in ("lexical", "newest-build")
    values: list[str | None] = list(names)
    if not (include or exclude or ignore_tags or ignore_globs):
        if kinds_first:
            _reject_build_tags(names, values, reasons)
        return values

    missing: Any = _MISSING
    if ignore_tags or ignore_globs:
        r_ignored = "rejected: listed in ignore"
        for i, name in enumerate(names):
            if name in ignore_tags or (ignore_globs and any(g.match(name) for g in ignore_globs)):
                reasons[i] = r_ignored
                values[i] = None
    if include is not None or exclude:
        memo = compiled.filter_memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        r_include = _Rejected(f"rejected: does not match include '{rule.include}'")
        r_exclude = {p.text: _Rejected(f"rejected: matches exclude '{p.text}'") for p in exclude}

        def outcome(name: str) -> str:
            value = name
            if include is not None:
                match = include.search(name)
                if match is None:
                    return r_include
                if extract is not None:
                    value = extract(match)
            hit = next((p.text for p in exclude if p.search(name)), None)
            return r_exclude[hit] if hit is not None else value

        # One memo lookup per tag through map(): the patterns run once per tag ever seen.
        for i, result in enumerate(map(memo.get, names, repeat(missing))):
            if result is missing:
                result = memo[names[i]] = outcome(names[i])
            if values[i] is None:
                continue
            if type(result) is _Rejected:
                reasons[i] = result
                values[i] = None
            else:
                values[i] = result
    if kinds_first:
        _reject_build_tags(names, values, reasons)
    return values


def _reject_build_tags(names: list[str], values: list[str | None], reasons: Reasons) -> None:
    """Reject mutable, hash and signature tags (strategies that would read them as values)."""
    kinds = classify_all(names)
    for i in compress(range(len(names)), kinds):
        if values[i] is not None:
            reasons[i] = f"rejected: {kinds[i]}, {ONLY_IF_ASKED}"
            values[i] = None


def unreadable_reason(name: str, value: str, reading: str, check_kind: bool) -> str:
    kind = build_tag_kind(name) if check_kind else None
    if kind is not None:
        return f"rejected: {kind}, {ONLY_IF_ASKED}"
    return f"rejected: {reading}" if value == name else f"rejected: {value!r}: {reading}"


def generic_pass(
    names: list[str],
    values: list[str | None],
    compiled: CompiledRule,
    running: Running,
    read: Reader,
    reasons: Reasons,
) -> Candidates:
    """Pass 2 for numeric, lexical, calver and newest-build."""
    rule = compiled.rule
    check_kind = compiled.include is None and rule.strategy in ("numeric", "calver")
    ascending = rule.order == "asc"
    base_key = running.key if not rule.downgrade and rule.strategy != "newest-build" else None
    r_downgrade = (
        f"rejected: {'older than' if ascending else 'ranks after'} the running "
        f"{running.tag} (downgrade not allowed)"
    )
    keep_all = rule.min_age is not None or rule.strategy == "newest-build"
    better = gt if ascending else lt
    best: Any = None
    candidates: Candidates = []
    add = candidates.append
    if rule.strategy == "lexical":
        # The value is its own key: no reading to look up.
        for i, value in enumerate(values):
            if not value:
                if value is not None:
                    reasons[i] = f"rejected: {EMPTY_VALUE}"
            elif base_key is not None and better(base_key, value):
                reasons[i] = r_downgrade
            elif keep_all or not candidates:
                best = value
                add((value, i))
            elif better(value, best):
                best = value
                candidates.clear()
                add((value, i))
            elif value == best:
                add((value, i))
        return candidates
    memo = compiled.read_memo
    if len(memo) > MEMO_LIMIT:
        memo.clear()
    missing: Any = _MISSING
    reading: Any
    for i, reading in enumerate(map(memo.get, values, repeat(missing))):  # type: ignore[arg-type]
        if reading is missing:
            value = values[i]
            if value is None:
                continue
            reading = memo[value] = read(value)
        if type(reading) is Unreadable:
            value = values[i]
            assert value is not None
            reasons[i] = unreadable_reason(names[i], value, reading, check_kind)
            continue
        if base_key is not None and better(base_key, reading):
            reasons[i] = r_downgrade
        elif keep_all or not candidates:
            best = reading
            add((reading, i))
        elif better(reading, best):
            best = reading
            candidates.clear()
            add((reading, i))
        elif reading == best:
            add((reading, i))
    return candidates


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"


def time_pass(
    names: list[str],
    candidates: Candidates,
    compiled: CompiledRule,
    running: Running,
    infos: dict[str, TagInfo],
    now: datetime | None,
    reasons: Reasons,
) -> Candidates:
    """Pass 3: creation time (newest-build) and minimum age, over the candidates only."""
    rule = compiled.rule
    newest = rule.strategy == "newest-build"
    if not newest and rule.min_age is None:
        return candidates
    min_age = rule.min_age.total_seconds() if rule.min_age is not None else None
    base_key = running.key if newest and not rule.downgrade else None
    kept: Candidates = []
    for key, i in candidates:
        info = infos.get(names[i])
        if newest:
            key = info.created if info is not None else None
            if key is None:
                reasons[i] = "rejected: creation time unknown"
                continue
        if min_age is not None:
            assert now is not None
            stamp = (info.created or info.first_seen) if info is not None else None
            if stamp is None:
                reasons[i] = "rejected: age unknown (no creation or first-seen time)"
                continue
            age = (now - stamp).total_seconds()
            if age < min_age:
                reasons[i] = f"rejected: too new ({_age(age)} old, min_age {_age(min_age)})"
                continue
        if base_key is not None and key < base_key:
            reasons[i] = f"rejected: built before the running {running.tag} (downgrade not allowed)"
            continue
        kept.append((key, i))
    return kept
