"""Include/exclude/extract filters, the regex guard, ignore lists and minimum age."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from imagebot.core.selection import SelectionRule, TagInfo, select
from imagebot.errors import SelectionError

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_include_restricts_and_names_the_pattern() -> None:
    """Tags not matching include are rejected with the pattern in the reason."""
    rule = SelectionRule(include=r"^\d+\.\d+\.\d+$")
    decision = select(["1.0.0", "1.1.0-debug", "0.9.0"], rule)
    assert decision.tag == "1.0.0"
    assert decision.verdict("1.1.0-debug").reason == (
        r"rejected: does not match include '^\d+\.\d+\.\d+$'"
    )


def test_exclude_rejects_each_matching_tag() -> None:
    """Any exclude pattern that matches rejects the tag, naming that pattern."""
    rule = SelectionRule(exclude=(r"^2\.", r"\.99$"))
    decision = select(["1.0.0", "1.0.99", "2.0.0"], rule)
    assert decision.tag == "1.0.0"
    assert decision.verdict("2.0.0").reason == r"rejected: matches exclude '^2\.'"
    assert decision.verdict("1.0.99").reason == r"rejected: matches exclude '\.99$'"


def test_flux_style_extract_orders_by_timestamp() -> None:
    """Flux filterTags: include with a named group and extract '$ts' orders by the group."""
    rule = SelectionRule(
        strategy="numeric", include=r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$", extract="$ts"
    )
    tags = ["main-abc1234-1700000300", "main-def5678-1700000900", "main-0a0a0a0-170000", "pr-1"]
    assert select(tags, rule).tag == "main-def5678-1700000900"


def test_extract_version_from_prefixed_tags_keeps_the_full_tag() -> None:
    """Extracted semver orders the tags, but the chosen tag is the original spelling."""
    rule = SelectionRule(
        include=r"^release-(?<version>\d+\.\d+\.\d+)-ubi$", extract="${version}", range="^2"
    )
    tags = ["release-2.1.0-ubi", "release-2.10.0-ubi", "release-3.0.0-ubi", "2.11.0"]
    assert select(tags, rule).tag == "release-2.10.0-ubi"


def test_extract_unreadable_value_reason_names_the_value() -> None:
    """When the extracted value is not readable, the reason quotes the value."""
    rule = SelectionRule(strategy="numeric", include=r"^b-(?P<n>\w+)$", extract="$n")
    decision = select(["b-12", "b-x1"], rule)
    assert decision.tag == "b-12"
    assert decision.verdict("b-x1").reason == "rejected: 'x1': not a number"


def test_catastrophic_pattern_fails_the_policy_fast() -> None:
    """A pattern that backtracks catastrophically raises SelectionError within a second."""
    rule = SelectionRule(strategy="lexical", include=r"^(a|aa)+$")
    start = time.monotonic()
    with pytest.raises(SelectionError) as err:
        select(["a" * 60 + "!"], rule)
    assert time.monotonic() - start < 5
    assert err.value.field == "include"
    assert "a" * 60 + "!" in str(err.value)


def test_ignore_exact_and_glob_for_non_semver() -> None:
    """ignore lists exact tags; for non-semver strategies globs work too."""
    rule = SelectionRule(strategy="numeric", ignore=("30", "2?"))
    decision = select(["10", "21", "25", "30"], rule)
    assert decision.tag == "10"
    assert decision.verdict("25").reason == "rejected: listed in ignore"


def test_ignore_semver_range_covers_v_spelling() -> None:
    """A semver ignore entry is a range, so '1.2.0' also ignores 'v1.2.0'."""
    decision = select(["v1.1.0", "v1.2.0"], SelectionRule(ignore=("1.2.0",)))
    assert decision.tag == "v1.1.0"


def test_min_age_uses_creation_then_first_seen() -> None:
    """min_age reads creation time, falls back to first-seen time, and rejects unknown ages."""
    tags = [
        TagInfo("1.0.0", created=NOW - timedelta(days=3)),
        TagInfo("1.1.0", first_seen=NOW - timedelta(days=2)),
        TagInfo("1.2.0", created=NOW - timedelta(hours=5)),
        "1.3.0",
    ]
    rule = SelectionRule(min_age=timedelta(days=1))
    decision = select(tags, rule, now=NOW)
    assert decision.tag == "1.1.0"
    assert decision.verdict("1.2.0").reason == "rejected: too new (built 5.0h ago, min_age 24.0h)"
    assert decision.verdict("1.3.0").reason == (
        "rejected: age unknown (no creation or first-seen time)"
    )


@pytest.mark.parametrize(
    "built",
    [
        datetime(1970, 1, 1, tzinfo=UTC),  # SOURCE_DATE_EPOCH=0
        datetime(1, 1, 1, tzinfo=UTC),  # Go's zero time
        NOW + timedelta(days=30),  # a clock in the future
    ],
)
def test_min_age_ignores_implausible_build_times(built: datetime) -> None:
    """A build time of 1970-01-01, 0001-01-01 or the future is unknown: first-seen counts."""
    young = TagInfo("1.1.0", created=built, first_seen=NOW - timedelta(hours=2))
    old = TagInfo("1.0.0", created=built, first_seen=NOW - timedelta(days=9))
    decision = select([old, young], SelectionRule(min_age=timedelta(days=1)), now=NOW)
    assert decision.tag == "1.0.0"
    assert decision.verdict("1.1.0").reason == (
        "rejected: too new (first seen 2.0h ago, min_age 24.0h)"
    )
    assert decision.verdict("1.0.0").reason == "chosen: highest version; first seen 9.0d ago"


def test_min_age_counts_a_plausible_build_time_over_first_seen() -> None:
    """An image built long ago is old enough on first sight (a fresh cache restarts nothing)."""
    tag = TagInfo("2.0.0", created=NOW - timedelta(days=400), first_seen=NOW)
    decision = select([tag], SelectionRule(min_age=timedelta(days=7)), now=NOW)
    assert decision.tag == "2.0.0"
    assert decision.verdict("2.0.0").reason == "chosen: highest version; built 400.0d ago"


def test_min_age_without_now_is_an_error() -> None:
    """The core has no clock: min_age without now is refused, naming the field."""
    with pytest.raises(SelectionError) as err:
        select(["1.0.0"], SelectionRule(min_age=timedelta(hours=1)))
    assert err.value.field == "min_age"


def test_hash_like_tags_never_chosen_by_default() -> None:
    """sha-, bare hex and cosign signature tags are rejected with their kind."""
    sig = "sha256-" + "ab" * 32 + ".sig"
    decision = select(["sha-abc1234", "0a1b2c3d4e", sig, "1.0.0"], SelectionRule())
    assert decision.tag == "1.0.0"
    assert "commit-hash" in decision.verdict("0a1b2c3d4e").reason
    assert "signature" in decision.verdict(sig).reason


def test_explanations_cover_every_gate() -> None:
    """Each rejection reason names the gate it failed."""
    rule = SelectionRule(range="^1", allow="minor", exclude=(r"-debug$",))
    tags = ["1.0.0", "1.5.0", "1.6.0-rc.1", "1.6.0-alpine", "1.7.0-debug", "2.0.0", "0.9.0", "1.2"]
    decision = select(tags, rule, current="1.1.0")
    reasons = {v.tag: v.reason for v in decision.verdicts}
    assert decision.tag == "1.5.0"
    assert reasons["1.0.0"] == "rejected: older than the running 1.1.0 (downgrade not allowed)"
    assert reasons["1.6.0-rc.1"] == "rejected: prerelease (set prerelease: true to allow)"
    assert reasons["1.6.0-alpine"] == "rejected: variant differs from the running 1.1.0"
    assert reasons["1.7.0-debug"] == "rejected: matches exclude '-debug$'"
    assert reasons["2.0.0"] == "rejected: outside range '^1'"
    assert reasons["1.2"].startswith("rejected: partial version")
    assert reasons["1.5.0"] == "chosen: highest version in '^1'"


def test_include_and_exclude_reasons_in_input_order() -> None:
    """Each tag's verdict names the first filter it fails; the first exclude listed wins."""
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
        "rejected: matches exclude '^0\\.'",
    ]


def test_non_ascii_tags_are_filtered_like_any_other() -> None:
    """A tag outside ASCII gets the include verdict every other tag would."""
    rule = SelectionRule(include=r"^\d+\.\d+\.\d+$", exclude=(r"^0\.",))
    decision = select(["1.0.0", "0.9.0", "2.0.0", "ünïcode", "3.0.0-rc.1"], rule)
    assert decision.tag == "2.0.0"
    assert decision.verdict("0.9.0").reason == "rejected: matches exclude '^0\\.'"
    assert decision.verdict("ünïcode").reason == (
        "rejected: does not match include '^\\d+\\.\\d+\\.\\d+$'"
    )


def test_lexical_skips_build_tags_and_explains_them() -> None:
    """Lexical order never picks a commit-hash or mutable tag (any case) and says why."""
    decision = select(
        ["1.0", "sha-abc1234", "Latest", "2.0", "zzz"], SelectionRule(strategy="lexical")
    )
    assert decision.tag == "zzz"
    assert decision.verdict("sha-abc1234").reason == (
        "rejected: a commit-hash tag, chosen only when include asks for it"
    )
    assert decision.verdict("Latest").reason == (
        "rejected: 'Latest' is a mutable tag, chosen only when include asks for it"
    )


def test_character_class_holding_group_syntax_is_a_class() -> None:
    """'[(?<x>]' is a character class, not a named group: it matches those characters."""
    rule = SelectionRule(strategy="lexical", include=r"^a[(?<x>]$")
    assert select(["a(", "a<", "ab"], rule).tag == "a<"
