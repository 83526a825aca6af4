"""Pass 2 for strategy semver: reading, partial, ignore, prerelease, variant, range, allow and
downgrade against the running version (see ``gates`` for the passes around it).

Choosing from 100,000 tags seen for the first time has a budget of 100 ms, a microsecond a
tag, and one regex match or one Python-level gate check per tag already costs most of that on a
small VM. So tags are judged in bulk, narrowing at each step:

1. by shape (``semver_shapes``): a gate the shape alone decides (not a version, build tag,
   partial, a prerelease when none may pass, a variant that differs) rejects every tag of the
   shape without reading a number;
2. by major version: range, allow and downgrade often follow from the major number alone
   (``^20`` rejects every major but 20), read for a whole shape with one C-level pass;
3. tag by tag, only for the rest: the full key, built only here.

The gates and reasons are the same for every tag whichever step decides it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import compress, repeat
from operator import is_, not_
from typing import Any

from .compiled import CompiledRule
from .gates import (
    Candidates,
    Reasons,
    Running,
    Survivors,
    unreadable_reason,
    write_reasons,
)
from .rule import PerTagReason
from .semver_shapes import (
    Layout,
    group_by_shape,
    layouts,
    pick,
    possible_majors,
    shapes,
)
from .semver_tags import Key

_NOT_SEMVER = "not a semver version"
#: The major of each line of newline-joined version tags.
_MAJOR = re.compile(r"^[vV]?(\d+)", re.MULTILINE)
#: A major version that passes every gate whatever follows it (never a rejection reason).
PASSES = ""
# Keys every version key sorts above / below (major numbers are non-negative ints).
_BELOW_ALL: Any = (-1,)
_ABOVE_ALL: Any = (float("inf"),)
#: What follows the major in the lowest key of a major (``N.0.0-0``).
_FLOOR = (0, 0, 0, ())


class _SemverGates:
    """The rule's gates for one call, with their rejection reasons."""

    def __init__(self, compiled: CompiledRule, running: Running) -> None:
        rule = compiled.rule
        self.check_kind = compiled.include is None
        # With extract, a reason names each tag's extracted value, so no group shares one.
        self.by_shape_unreadable = compiled.extract is None
        semver_range = compiled.range
        self.in_range = semver_range.test if semver_range is not None else None
        self.named_cores = (
            semver_range.prerelease_cores() if semver_range is not None else frozenset()
        )
        self.ignore_ranges = compiled.ignore_ranges
        base, current = running.semver, running.tag
        self.variant_ref: str | None = None
        if rule.variant == "match":
            if base is not None:
                self.variant_ref = base.variant
            elif compiled.include is None:
                self.variant_ref = ""
        self.base_key = base.key if base is not None and not rule.downgrade else None
        self.pre_line = base.core if base is not None and base.prerelease else None
        self.allow = rule.allow if base is not None else "major"
        self.base_core = base.core if base is not None else (0, 0, 0)
        self.partial_allowed, self.prerelease_allowed = rule.partial, rule.prerelease
        self.keep_all = rule.min_age is not None

        check_kind = self.check_kind
        self.r_not_version = PerTagReason(
            "rejected: not a semver version",
            lambda name: unreadable_reason(name, name, _NOT_SEMVER, check_kind),
        )
        self.r_partial = "rejected: partial version (set partial: true to read 1.2 as 1.2.0)"
        self.r_ignored = "rejected: listed in ignore"
        self.r_prerelease = "rejected: prerelease (set prerelease: true to allow)"
        self.r_variant = (
            f"rejected: variant differs from the running {current}"
            if base is not None
            else "rejected: has a variant suffix (set include or variant: any to choose one)"
        )
        self.r_range = f"rejected: outside range '{rule.range}'"
        self.r_allow = f"rejected: beyond allow: {self.allow} from the running {current}"
        self.r_downgrade = f"rejected: older than the running {current} (downgrade not allowed)"

        # The common range shape (>=low <high: every ^, ~ and x-range) is tested inline.
        low, high = semver_range.bounds() if semver_range is not None else (None, None)
        if low is not None or high is not None:
            self.in_range = None
        self.low_key: Any = low if low is not None else _BELOW_ALL
        self.high_key: Any = high if high is not None else _ABOVE_ALL
        # With no running prerelease and no range naming one, a prerelease never passes when
        # prereleases are off: the shape decides it.
        self.prerelease_by_shape = (
            not self.prerelease_allowed and self.pre_line is None and not self.named_cores
        )
        self._by_major: dict[int, str | None] = {}

    def shape_reasons(self, read_as: dict[str, Layout | None]) -> dict[str, str | None]:
        """For each shape, the reason every tag of it is rejected, or None: judge each tag."""
        decided: dict[str, str | None] = {}
        for shape, layout in read_as.items():
            if layout is not None:
                decided[shape] = self._version_shape_reason(layout)
            else:
                decided[shape] = self.r_not_version if self.by_shape_unreadable else None
        return decided

    def _version_shape_reason(self, layout: Layout) -> str | None:
        if layout.partial and not self.partial_allowed:
            return self.r_partial
        if self.ignore_ranges:
            return None
        if layout.prerelease is not None and not self.prerelease_allowed:
            return self.r_prerelease if self.prerelease_by_shape else None
        if self.variant_ref is not None and layout.variant not in (None, self.variant_ref):
            return self.r_variant
        # ``^20`` rejects every tag whose major is one digit without reading one.
        majors = possible_majors(layout.major_digits) if self.major_decides(layout) else None
        if majors is not None:
            verdicts = set(self.major_reasons(majors))
            if len(verdicts) == 1 and (verdict := verdicts.pop()):
                return verdict
        return None

    def major_decides(self, layout: Layout) -> bool:
        """Whether range is the first gate a tag of this (unrejected) layout meets."""
        return (
            self.in_range is None
            and not self.ignore_ranges
            and (layout.prerelease is None or self.prerelease_allowed)
            and (self.variant_ref is None or layout.variant is not None)
        )

    def major_reasons(self, majors: Sequence[int]) -> list[str | None]:
        """For tags whose next gate is range: the reason their major alone decides, PASSES
        when it says they pass every gate, or None."""
        known = self._by_major
        for major in set(majors).difference(known):
            known[major] = self._major_reason(major)
        return list(map(known.__getitem__, majors))

    def _major_reason(self, major: int) -> str | None:
        low, high = self.low_key[0], self.high_key[0]
        # A bound at the very bottom of its major (``<21.0.0-0`` from ``^20``) is decided by
        # the major: no version of major 21 is below it.
        if major < low or major > high or (major == high and self.high_key[1:] == _FLOOR):
            return self.r_range
        if (major == low and self.low_key[1:] != _FLOOR) or major == high:
            return None  # the rest of the version decides
        # Inside the range whatever follows the major; allow, then downgrade.
        if self.allow != "major":
            if major != self.base_core[0]:
                return self.r_allow
            if self.allow == "patch":
                return None
        if self.base_key is not None:
            if major < self.base_key[0]:
                return self.r_downgrade
            if major == self.base_key[0]:
                return None
        return PASSES

    def judge(
        self,
        positions: list[int],
        texts: list[str],
        layout: Layout,
        reasons: Reasons,
        candidates: Candidates,
        best: Any,
    ) -> Any:
        """Judge tags of one layout one by one; add the best to ``candidates``; return the
        best key so far."""
        pre_gate = layout.prerelease is not None and not self.prerelease_allowed
        ignore_ranges, in_range = self.ignore_ranges, self.in_range
        pre_line, named_cores = self.pre_line, self.named_cores
        variant_ref, allow, base_core, base_key = (
            self.variant_ref,
            self.allow,
            self.base_core,
            self.base_key,
        )
        low_key, high_key, keep_all = self.low_key, self.high_key, self.keep_all
        majors, minors, patches, release, pre_keys = layout.columns(texts)
        variants = layout.variants(texts)
        add = candidates.append
        # strict=False: columns the shape fixes are endless repeat()s.
        for i, major, minor, patch, pre_key, variant in zip(
            positions, majors, minors, patches, pre_keys, variants, strict=False
        ):
            key: Key = (major, minor, patch, release, pre_key)
            if ignore_ranges and any(r.test(key) for r in ignore_ranges):
                reasons[i] = self.r_ignored
            elif pre_gate and key[:3] != pre_line and key[:3] not in named_cores:
                reasons[i] = self.r_prerelease
            elif variant_ref is not None and variant != variant_ref:
                reasons[i] = self.r_variant
            elif key < low_key or key >= high_key or (in_range is not None and not in_range(key)):
                reasons[i] = self.r_range
            elif allow != "major" and (
                key[0] != base_core[0] or (allow == "patch" and key[1] != base_core[1])
            ):
                reasons[i] = self.r_allow
            elif base_key is not None and key < base_key:
                reasons[i] = self.r_downgrade
            elif keep_all or not candidates:
                best = key
                add((key, i))
            elif key > best:
                best = key
                candidates.clear()
                add((key, i))
            elif key == best:
                add((key, i))
        return best


def semver_pass(
    names: list[str],
    survivors: Survivors,
    compiled: CompiledRule,
    running: Running,
    reasons: Reasons,
) -> Candidates:
    """Judge the survivors of the filters (which set a reason for every other tag); return the
    candidates (see ``Candidates``)."""
    gates = _SemverGates(compiled, running)
    # live: positions of the values still judged, or None when all are (the common case).
    live, texts = survivors.positions, survivors.values

    # 1. by shape
    shaped = shapes(texts)
    read_as = layouts(set(shaped))
    decided = gates.shape_reasons(read_as)
    shape_reasons = list(map(decided.__getitem__, shaped))
    if live is None:
        reasons[:] = shape_reasons  # no tag was rejected before this pass
    else:
        write_reasons(reasons, live, shape_reasons)

    undecided = list(compress(range(len(shaped)), map(is_, shape_reasons, repeat(None))))
    if not undecided:
        return []
    # 2. by major version, for every tag whose next gate is range (``^20`` decides most tags
    # by their major alone): one regex pass reads the majors of all of them.
    by_shape = {
        shape: layout is not None and gates.major_decides(layout)
        for shape, layout in read_as.items()
        if decided[shape] is None
    }
    majors_decide = list(map(by_shape.__getitem__, pick(undecided, shaped)))
    one_by_one = list(compress(undecided, map(not_, majors_decide)))
    if any(majors_decide):
        ranged = list(compress(undecided, majors_decide))
        # Majors stay text: a few dozen distinct ones are read as numbers, not 85,000.
        majors = _MAJOR.findall("\n".join(pick(ranged, texts)))
        number = {text: int(text) for text in set(majors)}
        verdict = dict(zip(number, gates.major_reasons(list(number.values())), strict=True))
        by_major = list(map(verdict.__getitem__, majors))
        at = pick(ranged, live) if live is not None else ranged
        write_reasons(reasons, compress(at, by_major), filter(None, by_major))
        # Tags whose major passes every gate are accepted as they are (their reason stays
        # None); only those of the highest such major can be the best, and need a key.
        judged = {text for text, v in verdict.items() if v is None}
        passing = [text for text, v in verdict.items() if v is PASSES]
        if passing:
            judged.update(passing if gates.keep_all else (max(passing, key=number.__getitem__),))
        one_by_one += compress(ranged, map(judged.__contains__, majors))

    # 3. tag by tag, a shape at a time
    best: Any = None
    candidates: Candidates = []
    for shape, group in group_by_shape(shaped, one_by_one).items():
        group_texts = pick(group, texts)
        positions = pick(group, live) if live is not None else group
        layout = read_as[shape]
        if layout is None:
            for i, value in zip(positions, group_texts, strict=True):
                reasons[i] = unreadable_reason(names[i], value, _NOT_SEMVER, gates.check_kind)
            continue
        best = gates.judge(positions, group_texts, layout, reasons, candidates, best)
    return candidates
