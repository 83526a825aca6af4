"""``select``: choose one tag for a rule, with a reason for every tag it did not choose.

Every tag passes the same gates in the same order, and the first gate it fails is its reason:
duplicate, ignore list, include, exclude, build tags (``latest``, ``sha-…``), strategy reading,
prerelease, variant, range, allow, minimum age, downgrade. Tags that pass all gates are
candidates; the strategy's order picks one and a fixed tie-break settles equals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from imagebot.errors import SelectionError

from .compiled import CompiledRule, compile_rule
from .rule import Decision, SelectionRule, TagInfo, Verdicts
from .semver_tags import SemverTag, parse_tag
from .strategies import read_semver, reader, tiebreak_version
from .tag_kinds import MUTABLE_TAGS, build_tag_kind

_SUMMARY_REASONS = 3


def _age(delta_seconds: float) -> str:
    hours = delta_seconds / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"


class _Running:
    """The running tag as the rule reads it: the base for downgrade, allow and variant."""

    def __init__(
        self,
        compiled: CompiledRule,
        current: str | None,
        infos: dict[str, TagInfo],
        read: Callable[[str], Any],
    ) -> None:
        self.tag = current
        self.key: Any = None
        self.semver: SemverTag | None = None
        self.note = ""
        if current is None:
            return
        rule = compiled.rule
        value = current
        if compiled.include is not None and compiled.extract is not None:
            match = compiled.include.search(current)
            if match is not None:
                value = compiled.extract(match)
        if rule.strategy == "newest-build":
            info = infos.get(current)
            self.key = info.created if info is not None else None
            if self.key is None:
                self.note = f"; the running {current} has no known creation time"
            return
        reading = read_semver(value, True) if rule.strategy == "semver" else read(value)
        if isinstance(reading, str):
            self.note = f"; the running {current} cannot be read ({reading})"
            return
        self.key, self.semver = reading


def _normalise(tags: Sequence[str | TagInfo]) -> tuple[list[str], dict[str, TagInfo]]:
    names: list[str] = []
    infos: dict[str, TagInfo] = {}
    for tag in tags:
        if isinstance(tag, str):
            names.append(tag)
        else:
            names.append(tag.name)
            infos.setdefault(tag.name, tag)
    return names, infos


def _follow_digest(
    names: list[str], infos: dict[str, TagInfo], rule: SelectionRule, current: str | None
) -> Decision:
    follow = rule.follow or current
    if follow is None:
        raise SelectionError(
            "strategy digest needs follow: the tag whose digest to track (e.g. latest)",
            field="follow",
        )
    info = infos.get(follow)
    digest = info.digest if info is not None else None
    others = f"rejected: strategy digest follows only {follow!r}"
    reasons: list[str | None] = []
    for name in names:
        if name != follow:
            reasons.append(others)
        elif digest is None:
            reasons.append("rejected: the registry gave no digest for it")
        else:
            reasons.append(None)
    if follow not in names or digest is None:
        why = "is not among the tags" if follow not in names else "has no known digest"
        return Decision(
            tag=None,
            reason=f"no tag qualifies: followed tag {follow!r} {why}",
            verdicts=Verdicts(names, reasons, {}),
        )
    chosen = f"chosen: follows {follow!r} at {digest}"
    return Decision(
        tag=follow,
        reason=f"{follow}@{digest}: strategy digest follows {follow!r}",
        verdicts=Verdicts(names, reasons, {follow: chosen}),
        digest=digest,
    )


def _order_phrase(rule: SelectionRule, compiled: CompiledRule) -> str:
    highest = rule.order == "asc"
    if rule.strategy == "semver":
        where = f" in {compiled.range.text!r}" if compiled.range is not None else ""
        return f"highest version{where}"
    if rule.strategy == "numeric":
        return "highest number" if highest else "lowest number"
    if rule.strategy == "lexical":
        return "last in lexical order" if highest else "first in lexical order"
    if rule.strategy == "calver":
        return f"latest {rule.calver} date" if highest else f"earliest {rule.calver} date"
    return "newest build"


def select(
    tags: Sequence[str | TagInfo],
    rule: SelectionRule,
    *,
    current: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """Choose the tag ``rule`` wants from ``tags``; ``current`` is the tag running now.

    Raises SelectionError only for a bad rule (or min_age without ``now``); a tag the
    strategy cannot read is rejected with a reason and never fails the choice.
    """
    compiled = compile_rule(rule)
    names, infos = _normalise(tags)
    if rule.strategy == "digest":
        return _follow_digest(names, infos, rule, current)
    if rule.min_age is not None and now is None:
        raise SelectionError("min_age needs the current time to judge tag ages", field="min_age")

    read = reader(compiled)
    running = _Running(compiled, current, infos, read)
    strategy = rule.strategy
    semver = strategy == "semver"
    ascending = rule.order == "asc" or strategy in ("semver", "newest-build")
    include, exclude, extract = compiled.include, compiled.exclude, compiled.extract
    semver_range = compiled.range
    ignore_tags, ignore_ranges, ignore_globs = (
        compiled.ignore_tags,
        compiled.ignore_ranges,
        compiled.ignore_globs,
    )
    kinds_first = include is None and strategy in ("lexical", "newest-build")
    kinds_after = include is None and not kinds_first

    # Reasons shared by many tags are built once: formatting one per tag would dominate.
    r_duplicate = "rejected: duplicate of an earlier tag"
    r_ignored = "rejected: listed in ignore"
    r_include = f"rejected: does not match include {rule.include!r}"
    r_prerelease = "rejected: prerelease (set prerelease: true to allow)"
    r_range = f"rejected: outside range {rule.range!r}"
    r_no_created = "rejected: creation time unknown"
    r_no_age = "rejected: age unknown (no creation or first-seen time)"
    r_downgrade = f"rejected: older than the running {current} (downgrade not allowed)"
    if not ascending:
        r_downgrade = f"rejected: ranks after the running {current} (downgrade not allowed)"
    exclude_reasons = {p.text: f"rejected: matches exclude {p.text!r}" for p in exclude}

    base = running.semver
    variant_ref: str | None = None
    if semver and rule.variant == "match":
        if base is not None:
            variant_ref = base.variant
        elif include is None:
            variant_ref = ""
    r_variant = (
        f"rejected: variant differs from the running {current}"
        if base is not None
        else "rejected: has a variant suffix (set include or variant: any to choose one)"
    )
    base_key = running.key
    pre_line = base.core if base is not None and base.prerelease else None
    allow = rule.allow if base is not None else "major"
    r_allow = f"rejected: beyond allow: {allow} from the running {current}"
    min_age = rule.min_age.total_seconds() if rule.min_age is not None else None

    reasons: list[str | None] = []
    candidates: list[tuple[Any, str]] = []
    seen: set[str] = set()
    keep = reasons.append
    for name in names:
        if name in seen:
            keep(r_duplicate)
            continue
        seen.add(name)
        if name in ignore_tags or (ignore_globs and any(g.match(name) for g in ignore_globs)):
            keep(r_ignored)
            continue
        value = name
        if include is not None:
            match = include.search(name)
            if match is None:
                keep(r_include)
                continue
            if extract is not None:
                value = extract(match)
        hit = next((p for p in exclude if p.search(name)), None) if exclude else None
        if hit is not None:
            keep(exclude_reasons[hit.text])
            continue
        if kinds_first:
            kind = build_tag_kind(name)
            if kind is not None:
                keep(f"rejected: {kind}, chosen only when include asks for it")
                continue
        reading = read(value)
        if isinstance(reading, str):
            kind = build_tag_kind(name) if kinds_after else None
            if kind is not None:
                keep(f"rejected: {kind}, chosen only when include asks for it")
            else:
                keep(
                    f"rejected: {reading}" if value == name else f"rejected: {value!r} is {reading}"
                )
            continue
        key, version = reading
        if version is not None:
            vkey = version.key
            if ignore_ranges and any(r.contains(vkey) for r in ignore_ranges):
                keep(r_ignored)
                continue
            if (
                version.prerelease
                and not rule.prerelease
                and version.core != pre_line
                and not (semver_range is not None and semver_range.names_prerelease_of(vkey))
            ):
                keep(r_prerelease)
                continue
            if variant_ref is not None and version.variant != variant_ref:
                keep(r_variant)
                continue
            if semver_range is not None and not semver_range.contains(vkey):
                keep(r_range)
                continue
            if (
                allow != "major"
                and base is not None
                and (vkey[0] != base.key[0] or (allow == "patch" and vkey[1] != base.key[1]))
            ):
                keep(r_allow)
                continue
        info = infos.get(name) if infos else None
        if strategy == "newest-build":
            key = info.created if info is not None else None
            if key is None:
                keep(r_no_created)
                continue
        if min_age is not None:
            assert now is not None
            stamp = (info.created or info.first_seen) if info is not None else None
            if stamp is None:
                keep(r_no_age)
                continue
            age = (now - stamp).total_seconds()
            if age < min_age:
                keep(f"rejected: too new ({_age(age)} old, min_age {_age(min_age)})")
                continue
        if (
            base_key is not None
            and not rule.downgrade
            and (key < base_key if ascending else key > base_key)
        ):
            keep(r_downgrade)
            continue
        keep(None)
        candidates.append((key, name))

    if not candidates:
        counts = Counter(r for r in reasons if r is not None)
        top = "; ".join(
            f"{n} {r.removeprefix('rejected: ')}" for r, n in counts.most_common(_SUMMARY_REASONS)
        )
        summary = f"no tag qualifies among {len(names)}" + (f": {top}" if top else "")
        return Decision(
            tag=None, reason=summary + running.note, verdicts=Verdicts(names, reasons, {})
        )

    best_key = (
        max(candidates, key=lambda c: c[0])[0]
        if ascending
        else min(candidates, key=lambda c: c[0])[0]
    )
    ties = sorted(name for key, name in candidates if key == best_key)
    chosen = _break_tie(ties, strategy, current, base) if len(ties) > 1 else ties[0]

    phrase = _order_phrase(rule, compiled)
    if chosen == current:
        phrase += ", already running"
    accepted: dict[str, str] = {chosen: f"chosen: {phrase}"}
    below = f"accepted; ranks below the chosen {chosen}"
    for name in ties:
        if name != chosen:
            accepted[name] = f"accepted; ties with the chosen {chosen}, which wins the tie-break"
    for _, name in candidates:
        accepted.setdefault(name, below)
    info = infos.get(chosen)
    return Decision(
        tag=chosen,
        reason=f"{chosen}: {phrase} ({len(candidates)} of {len(names)} tags qualify)"
        + running.note,
        verdicts=Verdicts(names, reasons, accepted),
        digest=info.digest if info is not None else None,
    )


def _break_tie(ties: list[str], strategy: str, current: str | None, base: SemverTag | None) -> str:
    """Equal keys: the running tag wins, then plain spellings, then the first name.

    semver: ``1.2.3`` beats ``1.2.3_build.7`` (build metadata never makes a version newer),
    a full version beats a partial one, and the running tag's ``v`` style wins.
    newest-build: a mutable tag never wins a tie (Argo CD Image Updater could pick
    ``latest`` over the release it was pushed with); a higher version wins.
    """
    want_v = base.v_prefix if base is not None else False

    def preference(name: str) -> tuple[Any, ...]:
        if strategy == "semver":
            parsed = parse_tag(name)
            if parsed is None:  # the version came from extract; the name has no spelling rules
                return (name == current,)
            return (
                name == current,
                not parsed.build,
                not parsed.partial,
                parsed.v_prefix == want_v,
            )
        if strategy == "newest-build":
            return (name == current, name.lower() not in MUTABLE_TAGS, tiebreak_version(name))
        return (name == current,)

    # ties arrive sorted by name; a stable sort on preference keeps that as the last word.
    return sorted(ties, key=preference, reverse=True)[0]
