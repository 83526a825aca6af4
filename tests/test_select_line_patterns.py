"""User regexes proven harmless run once over the joined tag list (``regex_safety``,
``patterns``); the answer must be the one the guarded per-tag search gives, and a pattern is
only let through when backtracking on it stays polynomial."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from imagebot.core.selection import SelectionRule, select
from imagebot.core.selection.compiled import compile_rule
from imagebot.core.selection.patterns import (
    JoinedTags,
    compile_line_extract,
    compile_pattern,
    compile_template,
    line_flags,
    standard_syntax,
)
from imagebot.core.selection.regex_safety import line_safe
from imagebot.core.selection.tag_kinds import BUILD_TAG_LINE, classify

# Patterns people write in Flux, Argo CD Image Updater and Renovate policies.
HARMLESS = [
    r"^\d+\.\d+\.\d+$",
    r"^v?(?P<version>\d+\.\d+\.\d+)$",
    r"^main-[a-f0-9]+-(?P<ts>[0-9]+)",
    r"-rc",
    r"^.*-alpine$",
    r".*-debug$",
    r"^(\d+\.)+\d+$",
    r"^0\.",
    r"\d+",
    r"^[0-9]{1,5}\.[0-9]{1,5}$",
    r"^(alpine|debian)-\d+$",
    r"^v\d+(\.\d+){0,2}$",
    r"^(?:rc|beta|alpha)\.\d+$",
    r"^RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$",
    r"^(a|ab)*c$",
    r"\bv1\b",
    r"^(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?:-(?P<pre>[a-z]+\.\d+))?$",
    r"^$",
    r"",
    r"x?",
    r"^release-(?<version>\d+\.\d+\.\d+)-ubi$",  # Go and .NET spell named groups so
    r"^main-[a-fA-F0-9]+-(?P<ts>.*)",  # Flux's documented example
    r"[(?<x>]",  # a class, not a group
]

# Exponential or high-degree backtracking, or a meaning that changes over joined lines.
NOT_PROVEN = [
    r"(a+)+$",
    r"(\w+-?)*$",
    r"(a|a)*b",
    r"(a*)*b",
    r"^(\d+)*$",
    r"(x+x+)+y",
    r"(a|aa)+$",
    r"(.*a){12}",
    r"^.*.*.*x$",
    r"\d*\d*\d*x",
    r".*-.*-.*x",
    r"[^a]+",  # matches the newline between tags
    r"\s",
    r"a\Z",
    r"\Aabc",
    r"(?i)abc",
    r"(?i:abc)",
    r"(?=a)b",
    r"(?<!a)b",
    r"(a)\1",
    r"(?P<x>a)(?(x)b|c)",
    r"[[:alpha:]]+",  # POSIX class: the regex package reads it, re would not
]


@pytest.mark.parametrize("pattern", HARMLESS)
def test_common_patterns_are_proven_harmless(pattern: str) -> None:
    assert line_safe(standard_syntax(pattern))
    assert compile_pattern(pattern, "include").lines is not None


@pytest.mark.parametrize("pattern", NOT_PROVEN)
def test_runaway_or_line_sensitive_patterns_take_the_guarded_path(pattern: str) -> None:
    assert not line_safe(pattern)
    assert compile_pattern(pattern, "include").lines is None


tag_text = st.text(alphabet="ab01.-_vxc", min_size=1, max_size=16)


@settings(max_examples=300, deadline=None)
@given(pattern=st.sampled_from(HARMLESS), tags=st.lists(tag_text, min_size=1, max_size=30))
def test_line_flags_agree_with_the_guarded_search(pattern: str, tags: list[str]) -> None:
    compiled = compile_pattern(pattern, "include")
    joined = JoinedTags.of(tags)
    assert joined is not None
    expected = bytes(1 if compiled.search(tag) else 0 for tag in tags)
    assert compiled.line_flags(joined) == expected


EXTRACTING = [
    (r"^v?(?P<version>\d+\.\d+\.\d+)$", "$version"),
    (r"^(?P<major>\d+)\.\d+", "$major"),
    (r"^(?P<major>\d+)\.(\d+)", "${major}-$2"),
    (r"(?P<a>a+)(?P<b>b)?", "$b"),
    (r"(?P<a>a+)(?P<b>b)?", "x${0}y"),
    (r"(\d)(\d)?", "$1"),
    (r"^v?(?<version>\d+\.\d+)", "${version}"),
    (r"^v?(?P<n>\d+)", "v$n-x"),  # one group, with literal text around it
]


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(EXTRACTING), tags=st.lists(tag_text, min_size=1, max_size=30))
def test_line_extract_agrees_with_the_guarded_extract(
    case: tuple[str, str], tags: list[str]
) -> None:
    pattern, template = case
    include = compile_pattern(pattern, "include")
    per_tag = compile_template(template, include)
    expected = [per_tag(m) for tag in tags if (m := include.search(tag)) is not None]
    joined = JoinedTags.of(tags)
    assert joined is not None
    assert compile_line_extract(template, include)(joined) == expected


@pytest.mark.parametrize(
    "tags",
    [["1.0.0", ""], ["1.0.0", "a\nb"], ["1.0.0", "ünïcode"], ["1.0.0", "x\x01"], []],
    ids=["empty tag", "newline", "non-ascii", "marker", "no tags"],
)
def test_tags_that_would_not_read_back_one_per_line_are_not_joined(tags: list[str]) -> None:
    assert JoinedTags.of(tags) is None


def test_odd_tags_still_get_the_same_choice_through_the_guarded_path() -> None:
    rule = SelectionRule(include=r"^\d+\.\d+\.\d+$", exclude=(r"^0\.",))
    assert compile_rule(rule).lines_only
    tags = ["1.0.0", "0.9.0", "2.0.0", "ünïcode", "3.0.0-rc.1"]
    decision = select(tags, rule)
    assert decision.tag == "2.0.0"
    reasons = {v.tag: v.reason for v in decision.verdicts}
    assert reasons["0.9.0"] == "rejected: matches exclude '^0\\.'"
    assert reasons["ünïcode"] == "rejected: does not match include '^\\d+\\.\\d+\\.\\d+$'"


def test_include_and_exclude_reasons_through_line_forms() -> None:
    rule = SelectionRule(include=r"^\d+\.\d+\.\d+$", exclude=(r"^0\.", r"\.9\."))
    tags = ["latest", "1.0.0", "0.1.0", "1.9.0", "1.2.0", "0.9.1"]
    decision = select(tags, rule)
    assert decision.tag == "1.2.0"
    assert [v.reason for v in decision.verdicts] == [
        "rejected: does not match include '^\\d+\\.\\d+\\.\\d+$'",
        "accepted; ranks below the chosen 1.2.0",
        "rejected: matches exclude '^0\\.'",
        "rejected: matches exclude '\\.9\\.'",
        "chosen: highest version",
        # both excludes match: the first one listed is the reason
        "rejected: matches exclude '^0\\.'",
    ]


atoms = st.sampled_from(["a", "b", "-", r"\d", ".", "[ab]", "[a-z0-9]", r"\.", "1"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, children).map("".join),
        st.tuples(children, children).map(lambda p: f"(?:{p[0]}|{p[1]})"),
        children.map(lambda c: f"(?:{c})*"),
        children.map(lambda c: f"(?:{c})+"),
        children.map(lambda c: f"(?:{c})?"),
        children.map(lambda c: f"({c}){{1,3}}"),
    )


generated = st.recursive(atoms, _combine, max_leaves=8)


@settings(max_examples=400, deadline=None)
@example(pattern="(?:(?:a)+)+", filler="a")
@example(pattern="(?:a|a)*b", filler="a")
@example(pattern="(?:[ab]|a-)*-", filler="a-")
@given(pattern=generated, filler=st.sampled_from(["a", "ab", "a-", "1", "1.", "a1", "-"]))
def test_a_pattern_let_through_finishes_on_hostile_tags(pattern: str, filler: str) -> None:
    """What the proof promises, run: a pattern it accepts comes back on 128-character tags
    built to make backtracking explode (the repeated text the pattern likes, then a character
    that fails it). A wrong acceptance hangs here until pytest-timeout fails the test."""
    if not line_safe(pattern):
        return
    lines = compile_pattern(pattern, "include").lines
    assert lines is not None
    hostile = [(filler * 128)[:127] + end for end in ("!", "\x7f", "a", "1")]
    flags = compile_pattern(pattern, "include").line_flags(JoinedTags("\n".join(hostile)))
    assert flags == bytes(1 if re.search(pattern, tag) else 0 for tag in hostile)


build_like = st.one_of(
    st.sampled_from(["latest", "LATEST", "Stable", "main", "nightly", "sha-abc1234", "g_1234567"]),
    st.text(alphabet="0123456789abcdefABX-_.", min_size=1, max_size=20),
    st.builds(lambda h, s: f"sha256-{h}{s}", st.just("a" * 64), st.sampled_from(["", ".sig"])),
)


@settings(max_examples=300, deadline=None)
@given(tags=st.lists(build_like, min_size=1, max_size=30))
def test_build_tag_lines_agree_with_classify(tags: list[str]) -> None:
    joined = JoinedTags.of(tags)
    assert joined is not None
    expected = bytes(1 if classify(tag) is not None else 0 for tag in tags)
    assert line_flags(BUILD_TAG_LINE, joined) == expected


def test_lexical_skips_build_tags_and_explains_them() -> None:
    decision = select(
        ["1.0", "sha-abc1234", "Latest", "2.0", "zzz"], SelectionRule(strategy="lexical")
    )
    assert decision.tag == "zzz"
    reasons = {v.tag: v.reason for v in decision.verdicts}
    assert reasons["sha-abc1234"] == (
        "rejected: a commit-hash tag, chosen only when include asks for it"
    )
    assert (
        reasons["Latest"]
        == "rejected: 'Latest' is a mutable tag, chosen only when include asks for it"
    )


FILTER_RULES = [
    SelectionRule(include=r"^\d+\.\d+\.\d+$", exclude=(r"^0\.",)),
    SelectionRule(include=r"-rc", prerelease=True),
    SelectionRule(exclude=(r"rc", r"^v")),
    SelectionRule(strategy="numeric", include=r"^(?P<major>\d+)\.\d+", extract="$major"),
    SelectionRule(strategy="numeric", include=r"^v?(\d+)", extract="$1"),
    SelectionRule(strategy="numeric", include=r"(?P<n>\d*)", extract="$n"),  # may be empty
    SelectionRule(strategy="lexical", include=r"^(?P<a>\d)(?P<b>\.\d)?", extract="${a}x$b"),
    SelectionRule(strategy="lexical", exclude=(r"\.0$",)),
    SelectionRule(strategy="lexical"),
    SelectionRule(strategy="numeric", include=r"^v?(?<major>\d+)\.", extract="$major"),
    SelectionRule(strategy="lexical", include=r"^v?(?P<n>\d+)", extract="n$n"),
    SelectionRule(strategy="calver", calver="YY.MM.DD"),
    SelectionRule(strategy="calver", calver="YYYY", order="desc"),
    SelectionRule(strategy="calver", calver="0Y.0M.N", exclude=(r"^1\.",)),
]
calver_like = st.builds(
    lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 30), st.integers(0, 13), st.integers(0, 32)
)
version_like = st.builds(
    lambda v, a, b, c, suffix: f"{v}{a}.{b}.{c}{suffix}",
    st.sampled_from(["", "v"]),
    st.integers(0, 12),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from(["", "", "-rc.1", "-alpine"]),
)


@settings(max_examples=300, deadline=None)
@given(
    rule=st.sampled_from(FILTER_RULES),
    tags=st.lists(
        st.one_of(version_like, build_like, calver_like), min_size=1, max_size=30, unique=True
    ),
)
def test_line_forms_choose_and_explain_as_the_guarded_path_does(
    rule: SelectionRule, tags: list[str]
) -> None:
    """A tag holding the line forms' marker character sends the same list down the guarded
    per-tag path; it sorts below every other tag and is no version, so every other verdict
    must be the same."""
    odd = "\x01"
    for current in (None, tags[0]):  # the first tag also as the running one (downgrade)
        fast = select(tags, rule, current=current)
        guarded = select([*tags, odd], rule, current=current)
        assert fast.tag == (None if guarded.tag == odd else guarded.tag)
        assert list(fast.verdicts) == list(guarded.verdicts)[:-1]
