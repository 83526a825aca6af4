"""``select``: choose one tag for a rule, with a reason for every tag it did not choose.

Every tag passes the same gates in the same order (see ``gates``), and the first gate it fails
is its reason: ignore list, include, exclude, build tags (``latest``, ``sha-…``),
strategy reading, partial, prerelease, variant, range, allow, downgrade, minimum age. Tags that
pass all gates are candidates; the strategy's order picks one and a fixed tie-break settles
equals. Verdicts are built only when someone reads them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import compress
from operator import attrgetter
from typing import Any

from imagebot.core.gcpause import gc_paused
from imagebot.errors import SelectionError

from .compiled import CompiledRule, compile_rule
from .gates import Running, filter_pass, generic_pass, time_pass
from .rule import Decision, SelectionRule, TagInfo, TagInfos, Verdicts, reason_for
from .semver_pass import semver_pass
from .semver_shapes import pick
from .semver_tags import SemverTag, parse_tag
from .strategies import Unreadable, read_lexical, reader, tiebreak_version
from .tag_kinds import MUTABLE_TAGS

_SUMMARY_REASONS = 3


def _running(
    compiled: CompiledRule,
    current: str | None,
    infos: TagInfos,
    read: Callable[[str], Any],
) -> tuple[Running, str]:
    """Read the running tag like any other; the note says when it cannot be compared."""
    if current is None:
        return Running(None, None, None), ""
    rule = compiled.rule
    value = current
    if compiled.include is not None and compiled.extract is not None:
        match = compiled.include.search(current)
        if match is not None:
            value = compiled.extract(match)
    if rule.strategy == "newest-build":
        info = infos.get(current)
        created = info.created if info is not None else None
        note = "" if created else f"; the running {current} has no known creation time"
        return Running(current, created, None), note
    if rule.strategy == "semver":
        parsed = parse_tag(value)
        if parsed is None:
            return Running(current, None, None), f"; the running {current} is not a version"
        return Running(current, parsed.key, parsed), ""
    reading = read(value)
    if isinstance(reading, Unreadable):
        return Running(current, None, None), f"; the running {current} cannot be read ({reading})"
    return Running(current, reading, None), ""


def _normalise(tags: Sequence[str | TagInfo]) -> tuple[list[str], TagInfos]:
    try:  # plain names, the common case: join() checks every item is a str at C speed
        "".join(tags)  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        return list(tags), TagInfos(None, None)  # type: ignore[arg-type]
    try:  # all TagInfo: names read at C speed
        names = list(map(attrgetter("name"), tags))
        return names, TagInfos(names, list(tags))  # type: ignore[arg-type]
    except AttributeError:  # a mix of names and TagInfo
        names = [t if isinstance(t, str) else t.name for t in tags]
        return names, TagInfos(names, [None if isinstance(t, str) else t for t in tags])


def _follow_digest(
    names: list[str], infos: TagInfos, rule: SelectionRule, current: str | None
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
            verdicts=Verdicts(names, reasons),
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

    Raises SelectionError only for a bad rule: an invalid field, min_age without ``now``, or
    an include/exclude pattern that backtracks past its time limit. A tag the strategy cannot
    read is rejected with a reason and never fails the choice.
    """
    with gc_paused():  # a third of the time went to full collections
        return _select(tags, rule, current, now)


def _select(
    tags: Sequence[str | TagInfo],
    rule: SelectionRule,
    current: str | None,
    now: datetime | None,
) -> Decision:
    compiled = compile_rule(rule)
    names, infos = _normalise(tags)
    if rule.strategy == "digest":
        return _follow_digest(names, infos, rule, current)
    if rule.min_age is not None and now is None:
        raise SelectionError("min_age needs the current time to judge tag ages", field="min_age")

    read = reader(compiled) if rule.strategy != "semver" else read_lexical
    running, note = _running(compiled, current, infos, read)
    reasons: list[str | None] = [None] * len(names)
    survivors = filter_pass(names, compiled, reasons)
    if rule.strategy == "semver":
        indexed = semver_pass(names, survivors, compiled, running, reasons)
    else:
        indexed = generic_pass(names, survivors, compiled, running, read, reasons)
    indexed = time_pass(names, indexed, compiled, running, infos, now, reasons)
    qualified = reasons.count(None)
    ascending = rule.order == "asc" or rule.strategy in ("semver", "newest-build")
    base = running.semver

    if not indexed:
        counts = Counter(
            reason_for(name, r) for name, r in zip(names, reasons, strict=True) if r is not None
        )
        top = "; ".join(
            f"{n} {r.removeprefix('rejected: ')}" for r, n in counts.most_common(_SUMMARY_REASONS)
        )
        summary = f"no tag qualifies among {len(names)}" + (f": {top}" if top else "")
        return Decision(tag=None, reason=summary + note, verdicts=Verdicts(names, reasons))

    # (key, index) pairs compare by key first, so max/min run at C speed without a key function.
    best_key = max(indexed)[0] if ascending else min(indexed)[0]
    keys, at = zip(*indexed, strict=True)
    ties = sorted(set(pick(list(compress(at, map(best_key.__eq__, keys))), names)))
    chosen = _break_tie(ties, rule.strategy, current, base) if len(ties) > 1 else ties[0]

    phrase = _order_phrase(rule, compiled)
    if chosen == current:
        phrase += ", already running"
    accepted: dict[str, str] = {chosen: f"chosen: {phrase}"}
    for name in ties:
        if name != chosen:
            accepted[name] = f"accepted; ties with the chosen {chosen}, which wins the tie-break"
    info = infos.get(chosen)
    return Decision(
        tag=chosen,
        reason=f"{chosen}: {phrase} ({qualified} of {len(names)} tags qualify)" + note,
        verdicts=Verdicts(names, reasons, accepted, f"accepted; ranks below the chosen {chosen}"),
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
