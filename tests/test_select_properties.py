"""Property-based tests (hypothesis): order independence, no silent downgrade, rules respected."""

from __future__ import annotations

import random
import re

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from imagebot.core.selection import SelectionRule, parse_range, parse_tag, select

_SUFFIXES = ["", "", "", "-rc.1", "-rc.2", "-beta.1", "-alpine", "-rc.1-alpine", "-slim", "_b7"]

versions = st.builds(
    lambda v, major, minor, patch, partial, suffix: (
        f"{v}{major}.{minor}" + ("" if partial else f".{patch}") + suffix
    ),
    st.sampled_from(["", "", "v"]),
    st.integers(0, 4),
    st.integers(0, 3),
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from(_SUFFIXES),
)
junk = st.sampled_from(["latest", "main", "sha-abc1234", "deadbeef12", "1.2.3.4", "nightly-7"])
tags_lists = st.lists(st.one_of(versions, versions, versions, junk), max_size=25)
# Registries list each tag once; lists with repeats are drawn too.
unique_tags = st.lists(st.one_of(versions, versions, versions, junk), max_size=25, unique=True)

rules = st.builds(
    SelectionRule,
    range=st.sampled_from([None, "^1", "~2.1", ">=1 <3", "1.x || 3.x", "*", ">=2.0.0-rc.1"]),
    prerelease=st.booleans(),
    partial=st.booleans(),
    include=st.sampled_from([None, r"^v?\d", r"-alpine$"]),
    exclude=st.sampled_from([(), (r"^v",), (r"\.0$", r"rc")]),
    variant=st.sampled_from(["match", "any"]),
    allow=st.sampled_from(["major", "minor", "patch"]),
    downgrade=st.booleans(),
)
currents = st.one_of(st.none(), versions, junk)


@settings(max_examples=300, deadline=None)
@given(tags=st.one_of(unique_tags, tags_lists), rule=rules, current=currents, data=st.data())
def test_choice_does_not_depend_on_tag_order(
    tags: list[str], rule: SelectionRule, current: str | None, data: st.DataObject
) -> None:
    """Shuffling the input never changes the chosen tag."""
    shuffled = data.draw(st.permutations(tags))
    assert select(tags, rule, current=current).tag == select(shuffled, rule, current=current).tag


@settings(max_examples=300, deadline=None)
@given(tags=tags_lists, rule=rules, current=versions)
def test_never_a_downgrade_unless_allowed(
    tags: list[str], rule: SelectionRule, current: str
) -> None:
    """Without downgrade: true the chosen version is never below the running one."""
    chosen = select(tags, rule, current=current).tag
    running = parse_tag(current)
    if chosen is None or running is None or rule.downgrade:
        return
    parsed = parse_tag(chosen)
    assert parsed is not None
    assert parsed.key >= running.key


@settings(max_examples=300, deadline=None)
@given(tags=tags_lists, rule=rules, current=currents)
def test_choice_satisfies_range_and_filters(
    tags: list[str], rule: SelectionRule, current: str | None
) -> None:
    """The chosen tag is in the range, matches include, matches no exclude, obeys prerelease."""
    decision = select(tags, rule, current=current)
    if decision.tag is None:
        assert not any(v.accepted for v in decision.verdicts)
        return
    chosen = parse_tag(decision.tag)
    assert chosen is not None
    if rule.range is not None:
        assert parse_range(rule.range).contains(chosen.key)
    if rule.include is not None:
        assert regex.search(rule.include, decision.tag)
    assert not any(regex.search(p, decision.tag) for p in rule.exclude)
    if chosen.prerelease and not rule.prerelease:
        running = parse_tag(current) if current else None
        named = parse_range(rule.range).prerelease_cores() if rule.range else frozenset()
        assert (running is not None and running.core == chosen.core) or chosen.core in named
    if chosen.partial:  # read with partial: true, or in the precision of a running partial
        running = parse_tag(current) if current else None
        assert rule.partial or (running is not None and running.precision == chosen.precision)


@settings(max_examples=400, deadline=None)
@given(tags=st.one_of(unique_tags, tags_lists), rule=rules, current=currents)
def test_verdicts_agree_with_the_choice(
    tags: list[str], rule: SelectionRule, current: str | None
) -> None:
    """One verdict per tag; the chosen tag is accepted, no accepted tag ranks above it, and the
    summary's count of qualifying tags is the number of accepted verdicts."""
    decision = select(tags, rule, current=current)
    assert [v.tag for v in decision.verdicts] == tags
    accepted = [v.tag for v in decision.verdicts if v.accepted]
    if decision.tag is None:
        assert accepted == []
        return
    assert decision.tag in accepted
    qualify = re.search(r"\((\d+) of (\d+) tags qualify\)", decision.reason)
    assert qualify is not None
    assert (int(qualify[1]), int(qualify[2])) == (len(accepted), len(tags))
    best = parse_tag(decision.tag)
    assert best is not None
    for tag in accepted:
        other = parse_tag(tag)
        assert other is not None
        assert other.key <= best.key


@settings(max_examples=200, deadline=None)
@given(
    tags=st.lists(st.from_regex(r"[0-9]{1,4}|[a-z]{1,3}", fullmatch=True), max_size=20),
    order=st.sampled_from(["asc", "desc"]),
    strategy=st.sampled_from(["numeric", "lexical"]),
    data=st.data(),
)
def test_numeric_and_lexical_are_order_independent(
    tags: list[str], order: str, strategy: str, data: st.DataObject
) -> None:
    """numeric and lexical choices, ties included, do not depend on input order."""
    rule = SelectionRule(strategy=strategy, order=order)  # type: ignore[arg-type]
    shuffled = data.draw(st.permutations(tags))
    assert select(tags, rule).tag == select(shuffled, rule).tag


def test_choice_matches_explanation_on_a_large_list() -> None:
    """On 3,000 mixed tags and many rules, the choice is the best tag the verdicts accept."""
    rng = random.Random(7)
    tags = sorted(
        {
            f"{rng.choice(['', 'v'])}{rng.randint(0, 6)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
            + rng.choice(["", "", "-rc.1", "-rc.2", "-alpine", "-beta.3-alpine", "_b2"])
            for _ in range(3000)
        }
        | {"latest", "sha-abc1234", "1.2", "3"}
    )
    rules = [
        SelectionRule(range=r, prerelease=p, partial=q, variant=v, allow=a)
        for r in (None, "^2", "~3.4", ">=1.2 <5", "1.x || 4.x", "!=6.9.9")
        for p in (False, True)
        for q in (False, True)
        for v in ("match", "any")
        for a in ("major", "minor")
    ]
    for rule in rules:
        for current in (None, "3.4.5", "4.0.0-rc.1", "2.2.2-alpine", "v1.0.0"):
            decision = select(tags, rule, current=current)
            accepted = [v.tag for v in decision.verdicts if v.accepted]
            if decision.tag is None:
                assert accepted == [], (rule, current)
                continue
            chosen = parse_tag(decision.tag)
            assert chosen is not None
            assert decision.tag in accepted, (rule, current)
            assert all(parse_tag(t).key <= chosen.key for t in accepted), (rule, current)  # type: ignore[union-attr]
            assert f"({len(accepted)} of {len(tags)} tags qualify)" in decision.reason


release_or_pre = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}{pre}",
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from(["", "-rc.1", "-rc.10", "-rc.2", "-alpha", "-alpha.1", "-beta.2", "-1", "-rc"]),
)


@settings(max_examples=300, deadline=None)
@given(a=release_or_pre, b=release_or_pre)
def test_precedence_agrees_with_the_semver_library(a: str, b: str) -> None:
    """For SemVer tags with prerelease words, imagebot orders them as ``semver.Version`` does
    (other suffixes are variants here, on purpose)."""
    import semver

    ka, kb = parse_tag(a), parse_tag(b)
    assert ka is not None and kb is not None
    expected = semver.Version.parse(a).compare(b)
    assert (ka.key > kb.key) - (ka.key < kb.key) == expected
