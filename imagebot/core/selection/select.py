"""``select``: choose one tag for a rule, with a reason for every tag it did not choose.

Every tag passes the same chain of gates (``gates.GATES``) in the same order, and the first
gate it fails is its reason. The strategy ranks the tags no gate rejected; equal keys go to
the running tag, then to the strategy's preferred spelling, then to the first name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from imagebot.errors import SelectionError

from .build_tags import build_tag_kind
from .compiled import compile_rule
from .gates import GATES, Candidate, Context, Gate, Running, age_words, said_once, tag_age
from .rule import Decision, Rejection, SelectionRule, TagInfo, Verdict

_SUMMARY_REASONS = 3


def select(
    tags: Sequence[str | TagInfo],
    rule: SelectionRule,
    *,
    current: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """Choose the tag ``rule`` wants from ``tags``; ``current`` is the tag running now.

    Raises SelectionError only for a bad rule: an invalid field, min_age without ``now``,
    strategy digest with nothing to follow, or an include/exclude pattern that backtracks
    past its time limit. A tag the strategy cannot read is rejected with a reason.
    """
    compiled = compile_rule(rule)
    follow = rule.follow or current
    if compiled.strategy.needs_digest and follow is None:
        raise SelectionError(
            "strategy digest needs follow: the tag whose digest to track (e.g. latest)",
            field="follow",
        )
    if rule.min_age is not None and now is None:
        raise SelectionError("min_age needs the current time to judge tag ages", field="min_age")
    infos = {t.name: t for t in reversed(tags) if isinstance(t, TagInfo)}
    blank = Context(compiled, Running(None), now, follow, said_once(compiled, Running(None)))
    running = _running(current, infos, blank)
    ctx = Context(compiled, running, now, follow, said_once(compiled, running))
    gates = [g for g in GATES if g.applies(compiled, running)]

    checks = [gate.check for gate in gates]
    after = {g.name: gates[i + 1 :] for i, g in enumerate(gates) if g.name != "read"}
    candidates: list[Candidate] = []
    verdicts: list[tuple[Candidate, Rejection | None, tuple[Rejection, ...]]] = []
    for item in tags:
        name = item if isinstance(item, str) else item.name
        tag = Candidate(name, infos.get(name), name)
        rejection = None
        for check in checks:  # the first gate that rejects the tag gives its reason
            rejection = check(tag, ctx)
            if rejection is not None:
                break
        else:
            candidates.append(tag)
            verdicts.append((tag, None, ()))
            continue
        verdicts.append((tag, rejection, _later(tag, ctx, after.get(rejection.gate, ()))))
    return replace(_decide(candidates, verdicts, ctx), gates=tuple(g.name for g in gates))


def _later(tag: Candidate, ctx: Context, rest: Sequence[Gate]) -> tuple[Rejection, ...]:
    """The verdicts of the gates after the first that rejected ``tag``: the rejections, in
    chain order. The gates after read judge the version it read: a tag it cannot read
    stops there."""
    out = []
    for gate in rest:
        rejection = gate.check(tag, ctx)
        if rejection is not None:
            out.append(rejection)
            if gate.name == "read":
                break
    return tuple(out)


def _running(current: str | None, infos: dict[str, TagInfo], blank: Context) -> Running:
    """Read the running tag as any other: through include's extract and the strategy."""
    compiled = blank.compiled
    if current is None or compiled.strategy.needs_digest:  # digest compares no versions
        return Running(current)
    tag = Candidate(current, infos.get(current), current)
    tag.value = compiled.included(current) or current if compiled.include else current
    rejection = compiled.strategy.read(tag, blank)
    if rejection is None:
        return Running(current, tag.key, tag.version)
    words = compiled.strategy.unreadable.format(current=current, why=rejection.message)
    # A running build tag (latest, sha-...) is no version: moving off it is the point. Any
    # other tag the strategy cannot read may be newer than every candidate: the image stays.
    rule = compiled.rule
    blocks = not (rule.downgrade or rule.replace_unreadable or build_tag_kind(current))
    return Running(current, unreadable=words, blocks=blocks)


def _decide(
    candidates: list[Candidate],
    verdicts: list[tuple[Candidate, Rejection | None, tuple[Rejection, ...]]],
    ctx: Context,
) -> Decision:
    rule, running = ctx.compiled.rule, ctx.running
    total = len(verdicts)
    note = f"; {running.unreadable}" if running.unreadable and not running.blocks else ""
    if not candidates:
        counts = Counter(r.message for _, r, _ in verdicts if r is not None)
        top = "; ".join(f"{n} {m}" for m, n in counts.most_common(_SUMMARY_REASONS))
        summary = f"no tag qualifies among {total}" + (f": {top}" if top else "")
        return Decision(None, summary + note, _verdicts(verdicts, {}, "accepted"))

    descending = ctx.compiled.strategy.honours_order and rule.order == "desc"
    keys = [t.key for t in candidates]
    best = min(keys) if descending else max(keys)
    ties = sorted({t.name: t for t in candidates if t.key == best}.values(), key=lambda t: t.name)
    preference = ctx.compiled.strategy.preference
    # max() keeps the first of equals: the running tag, then the preference, then the first name
    chosen = max(ties, key=lambda t: (t.name == running.tag, *preference(t, ctx)))
    where = f" in {rule.range!r}" if rule.range else ""
    phrase = ctx.compiled.strategy.phrase[descending].format(
        rule=rule, follow=ctx.follow, where=where
    )
    if chosen.name == running.tag:
        phrase += ", already running"
    if rule.min_age is not None and ctx.now is not None:
        age = tag_age(chosen, ctx.now)
        if age is not None:
            phrase += f"; {age[0]} {age_words(age[1])} ago"
    accepted = {chosen.name: f"chosen: {phrase}"}
    for tie in ties:
        if tie.name != chosen.name:
            accepted[tie.name] = (
                f"accepted; ties with the chosen {chosen.name}, which wins the tie-break"
            )
    others = f"accepted; ranks below the chosen {chosen.name}"
    reason = f"{chosen.name}: {phrase} ({len(candidates)} of {total} tags qualify){note}"
    digest = chosen.info.digest if chosen.info is not None else None
    return Decision(chosen.name, reason, _verdicts(verdicts, accepted, others), digest)


def _verdicts(
    verdicts: list[tuple[Candidate, Rejection | None, tuple[Rejection, ...]]],
    accepted: dict[str, str],
    others: str,
) -> tuple[Verdict, ...]:
    return tuple(
        Verdict(tag.name, True, accepted.get(tag.name, others))
        if rejection is None
        else Verdict(tag.name, False, rejection.reason, rejection, later)
        for tag, rejection, later in verdicts
    )
