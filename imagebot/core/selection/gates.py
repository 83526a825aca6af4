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

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import compress, repeat
from operator import add, gt, is_, itemgetter, lt, not_
from typing import Any

from .calver import CalverFormat
from .compiled import CompiledRule
from .patterns import JoinedTags, line_flags
from .rule import PerTagReason, TagInfos
from .semver_tags import SemverTag
from .strategies import EMPTY_VALUE, Reader, Unreadable
from .tag_kinds import BUILD_TAG_LINE, build_tag_kind, classify_all

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


@dataclass(frozen=True, slots=True)
class Survivors:
    """The tags a pass left to judge: their positions in the input (None: every tag, in order)
    and the value each is read as (the tag, or what extract made of it)."""

    positions: list[int] | None
    values: list[str]

    def indexed(self) -> Iterable[int]:
        return self.positions if self.positions is not None else range(len(self.values))

    def keep(self, flags: Iterable[object]) -> Survivors:
        """The survivors whose flag is true (``flags`` runs along ``values``)."""
        flags = list(flags)
        return Survivors(list(compress(self.indexed(), flags)), list(compress(self.values, flags)))

    def reject(self, flags: Iterable[object], reason: str | None, reasons: Reasons) -> Survivors:
        """Give the survivors whose flag is true ``reason``; the rest survive."""
        flags = list(flags)
        if not any(flags):
            return self
        write_reasons(reasons, compress(self.indexed(), flags), repeat(reason))
        return self.keep(map(not_, flags))


def filter_pass(names: list[str], compiled: CompiledRule, reasons: Reasons) -> Survivors:
    """Pass 1: ignore list, include (and extract), exclude, build tags; sets the reason of every
    tag it rejects and returns the rest.

    A tag listed twice gets the same verdict twice; registries list each tag once, and
    checking every list for repeats would cost a tenth of the budget.
    """
    rule = compiled.rule
    include, exclude = compiled.include, compiled.exclude
    ignore_tags, ignore_globs = compiled.ignore_tags, compiled.ignore_globs
    survivors = Survivors(None, names)
    if ignore_tags or ignore_globs:
        r_ignored = "rejected: listed in ignore"
        ignored = [
            name in ignore_tags or any(g.match(name) for g in ignore_globs) for name in names
        ]
        survivors = survivors.reject(ignored, r_ignored, reasons)
    if include is not None or exclude:
        r_include = _Rejected(f"rejected: does not match include '{rule.include}'")
        r_exclude = {p.text: _Rejected(f"rejected: matches exclude '{p.text}'") for p in exclude}
        joined = JoinedTags.of(survivors.values) if compiled.lines_only else None
        if joined is not None:
            survivors = _filter_lines(survivors, joined, compiled, reasons, r_include, r_exclude)
        else:
            survivors = _filter_each(survivors, compiled, reasons, r_include, r_exclude)
    if include is None and rule.strategy in ("lexical", "newest-build"):
        survivors = _reject_build_tags(survivors, reasons)
    return survivors


def _filter_each(
    survivors: Survivors,
    compiled: CompiledRule,
    reasons: Reasons,
    r_include: _Rejected,
    r_exclude: dict[str, _Rejected],
) -> Survivors:
    """include, extract and exclude tag by tag, through the guarded patterns."""
    include, exclude, extract = compiled.include, compiled.exclude, compiled.extract
    memo = compiled.filter_memo
    if len(memo) > MEMO_LIMIT:
        memo.clear()

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
    missing: Any = _MISSING
    names = survivors.values
    results: list[Any] = list(map(memo.get, names, repeat(missing)))
    for k in compress(range(len(results)), map(is_, results, repeat(missing))):
        results[k] = memo[names[k]] = outcome(names[k])
    rejected = [type(result) is _Rejected for result in results]
    write_reasons(reasons, compress(survivors.indexed(), rejected), compress(results, rejected))
    flags = list(map(not_, rejected))
    return Survivors(list(compress(survivors.indexed(), flags)), list(compress(results, flags)))


def _filter_lines(
    survivors: Survivors,
    tags: JoinedTags,
    compiled: CompiledRule,
    reasons: Reasons,
    r_include: _Rejected,
    r_exclude: dict[str, _Rejected],
) -> Survivors:
    """include, extract and exclude through the patterns' line forms (``patterns``): each
    runs once over the joined list, in C."""
    include = compiled.include
    every = compiled.extract_every_line
    if include is not None:
        if every is not None:  # one pass: "" where include does not match
            extracted = every.findall(tags.text)
            hit = bytes(map(bool, extracted))
        else:
            hit = include.line_flags(tags)
        positions = survivors.indexed()
        if survivors.positions is None:  # every reason is still None: write them all at once
            reasons[:] = map({0: r_include, 1: None}.__getitem__, hit)
        else:
            write_reasons(reasons, compress(positions, hit.translate(_FLIP)), repeat(r_include))
        kept = list(compress(positions, hit))
        names = list(compress(survivors.values, hit))
        if every is not None:
            values = list(filter(None, extracted))
        elif compiled.extract_lines is not None:
            values = compiled.extract_lines(tags)
        else:
            values = names
        survivors = Survivors(kept, values)
    else:
        names = survivors.values
    for pattern in compiled.exclude:
        joined = JoinedTags.of(names)
        if joined is None:  # no tag left
            break
        out = pattern.line_flags(joined)
        if 1 in out:
            survivors = survivors.reject(out, r_exclude[pattern.text], reasons)
            names = list(compress(names, out.translate(_FLIP)))
    return survivors


#: Swaps the bytes 0 and 1 of ``line_flags``.
_FLIP = bytes([1, 0]) + bytes(range(2, 256))


def write_reasons(reasons: Reasons, positions: Iterable[int], texts: Iterable[str | None]) -> None:
    """``reasons[i] = text`` for each pair, in one C-level loop (a Python loop over 50,000
    rejections costs a tenth of the budget)."""
    deque(map(reasons.__setitem__, positions, texts), maxlen=0)


def _reject_build_tags(survivors: Survivors, reasons: Reasons) -> Survivors:
    """Reject mutable, hash and signature tags (strategies that would read them as values)."""
    joined = JoinedTags.of(survivors.values)
    if joined is None:
        kinds = classify_all(survivors.values)
        if not any(kinds):
            return survivors
        texts = {kind: f"rejected: {kind}, {ONLY_IF_ASKED}" for kind in set(kinds) if kind}
        write_reasons(
            reasons, compress(survivors.indexed(), kinds), map(texts.get, filter(None, kinds))
        )
        return survivors.keep(map(not_, kinds))
    return survivors.reject(line_flags(BUILD_TAG_LINE, joined), _R_BUILD_TAG, reasons)


def _build_tag_reason(name: str) -> str:
    return f"rejected: {build_tag_kind(name)}, {ONLY_IF_ASKED}"


_R_BUILD_TAG = PerTagReason(f"rejected: a build tag, {ONLY_IF_ASKED}", _build_tag_reason)


def unreadable_reason(name: str, value: str, reading: str, check_kind: bool) -> str:
    kind = build_tag_kind(name) if check_kind else None
    if kind is not None:
        return f"rejected: {kind}, {ONLY_IF_ASKED}"
    return f"rejected: {reading}" if value == name else f"rejected: {value!r}: {reading}"


def generic_pass(
    names: list[str],
    survivors: Survivors,
    compiled: CompiledRule,
    running: Running,
    read: Reader,
    reasons: Reasons,
) -> Candidates:
    """Pass 2 for numeric, lexical, calver and newest-build."""
    rule = compiled.rule
    if rule.strategy == "newest-build":  # nothing to read: the time pass orders by creation
        return list(zip(repeat(0), survivors.indexed()))
    check_kind = compiled.include is None and rule.strategy in ("numeric", "calver")
    ascending = rule.order == "asc"
    base_key = running.key if not rule.downgrade else None
    r_downgrade = (
        f"rejected: {'older than' if ascending else 'ranks after'} the running "
        f"{running.tag} (downgrade not allowed)"
    )
    keep_all = rule.min_age is not None
    better = gt if ascending else lt
    best: Any = None
    candidates: Candidates = []
    add = candidates.append
    values = survivors.values
    if rule.strategy == "lexical":
        return _lexical(survivors, base_key, better, keep_all, r_downgrade, reasons)
    if rule.strategy == "calver" and compiled.extract is None and compiled.calver is not None:
        joined = JoinedTags.of(survivors.values)
        if joined is not None:
            return _calver_columns(
                survivors,
                joined,
                compiled.calver,
                check_kind,
                base_key,
                better,
                keep_all,
                r_downgrade,
                reasons,
            )
    memo = compiled.read_memo
    if len(memo) > MEMO_LIMIT:
        memo.clear()
    missing: Any = _MISSING
    reading: Any
    for k, (i, reading) in enumerate(
        zip(survivors.indexed(), map(memo.get, values, repeat(missing)), strict=True)
    ):
        if reading is missing:
            reading = memo[values[k]] = read(values[k])
        if type(reading) is Unreadable:
            reasons[i] = unreadable_reason(names[i], values[k], reading, check_kind)
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


def _lexical(
    survivors: Survivors,
    base_key: Any,
    better: Callable[[Any, Any], bool],
    keep_all: bool,
    r_downgrade: str,
    reasons: Reasons,
) -> Candidates:
    """Pass 2 for lexical, where a value is its own key: every step a C-level pass."""
    if "" in survivors.values:
        empty = map(not_, survivors.values)
        survivors = survivors.reject(empty, f"rejected: {EMPTY_VALUE}", reasons)
    keys = survivors.values
    return _rank(keys, list(survivors.indexed()), base_key, better, keep_all, r_downgrade, reasons)


def _calver_columns(
    survivors: Survivors,
    joined: JoinedTags,
    calver: CalverFormat,
    check_kind: bool,
    base_key: Any,
    better: Callable[[Any, Any], bool],
    keep_all: bool,
    r_downgrade: str,
    reasons: Reasons,
) -> Candidates:
    """Pass 2 for calver over the joined tags: one ``findall`` reads every tag's fields, and
    keys are built a column at a time (a regex match and a key per tag cost 3 µs)."""
    rows = calver.every_line.findall(joined.text)
    columns: list[Any] = list(zip(*rows, strict=True)) if calver.groups > 1 else [rows]
    # Every field holds at least one digit, so a tag follows the format where its first is
    # not empty.
    read = list(map(bool, columns[0]))
    if not all(read):
        off = calver.off_format
        reason = PerTagReason(
            f"rejected: {off}", lambda name: unreadable_reason(name, name, off, check_kind)
        )
        survivors = survivors.reject(map(not_, read), reason, reasons)
        columns = [list(compress(column, read)) for column in columns]
    slots: list[Any] = [repeat(0)] * 8
    for (slot, short_year), column in zip(calver.slots, columns, strict=True):
        numbers = map(int, column)
        slots[slot] = list(map(add, numbers, repeat(2000))) if short_year else list(numbers)
    # The endless repeat(0) of an unused slot stops with the real columns.
    keys = list(zip(*slots, strict=False))
    return _rank(keys, list(survivors.indexed()), base_key, better, keep_all, r_downgrade, reasons)


def _rank(
    keys: list[Any],
    positions: list[int],
    base_key: Any,
    better: Callable[[Any, Any], bool],
    keep_all: bool,
    r_downgrade: str,
    reasons: Reasons,
) -> Candidates:
    """Downgrade, then the candidates from keys read in bulk: the best key's ties, or all of
    them when a later pass still judges them (``keep_all``)."""
    if base_key is not None:
        behind = list(map(partial(better, base_key), keys))
        if any(behind):
            write_reasons(reasons, compress(positions, behind), repeat(r_downgrade))
            ahead = list(map(not_, behind))
            keys, positions = list(compress(keys, ahead)), list(compress(positions, ahead))
    if not keys:
        return []
    if keep_all:
        return list(zip(keys, positions, strict=True))
    best = max(keys) if better is gt else min(keys)
    return [(best, i) for i in compress(positions, map(best.__eq__, keys))]


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"


def time_pass(
    names: list[str],
    candidates: Candidates,
    compiled: CompiledRule,
    running: Running,
    infos: TagInfos,
    now: datetime | None,
    reasons: Reasons,
) -> Candidates:
    """Pass 3: creation time (newest-build) and minimum age, over the candidates only, each
    step a C-level pass over them (newest-build keeps every tag a candidate until here)."""
    rule = compiled.rule
    newest = rule.strategy == "newest-build"
    if not candidates or (not newest and rule.min_age is None):
        return candidates
    keys = list(map(itemgetter(0), candidates))
    positions = list(map(itemgetter(1), candidates))
    found = infos.at(positions)
    # Columns, one item per candidate, kept aligned as gates drop candidates.
    cols: dict[str, list[Any]] = {
        "key": keys,
        "at": positions,
        "created": list(map(getattr, found, repeat("created"), repeat(None))),
        "seen": list(map(getattr, found, repeat("first_seen"), repeat(None))),
    }

    def drop(flags: Iterable[object], reason: str) -> None:
        rejected = list(flags)
        if any(rejected):
            write_reasons(reasons, compress(cols["at"], rejected), repeat(reason))
            keep = list(map(not_, rejected))
            for name, items in cols.items():
                cols[name] = list(compress(items, keep))

    if newest:
        drop(map(is_, cols["created"], repeat(None)), "rejected: creation time unknown")
        cols["key"] = cols["created"]
    if rule.min_age is not None:
        assert now is not None
        # created, else first seen: next() of filter(None, (created, seen)), all in C
        pairs = zip(cols["created"], cols["seen"], strict=True)
        cols["stamp"] = list(map(next, map(partial(filter, None), pairs), repeat(None)))
        drop(
            map(is_, cols["stamp"], repeat(None)),
            "rejected: age unknown (no creation or first-seen time)",
        )
        cutoff = now - rule.min_age
        drop(map(cutoff.__lt__, cols["stamp"]), _too_new(now, rule.min_age, infos))
    if newest and not rule.downgrade and running.key is not None:
        drop(
            map(running.key.__gt__, cols["key"]),
            f"rejected: built before the running {running.tag} (downgrade not allowed)",
        )
    return list(zip(cols["key"], cols["at"], strict=True))


def _too_new(now: datetime, min_age: timedelta, infos: TagInfos) -> PerTagReason:
    limit = _age(min_age.total_seconds())

    def words(name: str) -> str:
        info = infos.get(name)
        stamp = info.created or info.first_seen if info is not None else None
        assert stamp is not None
        return f"rejected: too new ({_age((now - stamp).total_seconds())} old, min_age {limit})"

    return PerTagReason(f"rejected: too new (min_age {limit})", words)
