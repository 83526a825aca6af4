"""validate_rule and the semver range grammar: what is accepted, what is refused and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from imagebot.core.selection import SelectionRule, parse_range, parse_tag, select, validate_rule
from imagebot.errors import SelectionError


def contains(range_text: str, version: str) -> bool:
    parsed = parse_tag(version)
    assert parsed is not None
    return parse_range(range_text).contains(parsed.key)


@pytest.mark.parametrize(
    ("range_text", "inside", "outside"),
    [
        ("^1.2.3", "1.2.3 1.9.9", "1.2.2 2.0.0 2.0.0-rc.1"),
        ("^0.2.3", "0.2.3 0.2.99", "0.3.0 0.2.2"),
        ("^0.0.3", "0.0.3", "0.0.4 0.0.2"),
        ("^0", "0.0.1 0.99.0", "1.0.0"),
        ("~1.2.3", "1.2.3 1.2.99", "1.3.0 1.2.2"),
        ("~1.2", "1.2.0 1.2.5", "1.3.0"),
        ("1.x", "1.0.0 1.99.0", "2.0.0 0.9.0"),
        ("1.2.X", "1.2.0 1.2.9", "1.3.0"),
        ("*", "0.0.0 99.0.0", ""),
        (">=1.2.3 <2", "1.2.3 1.99.0", "1.2.2 2.0.0 2.0.0-rc.1"),
        (">1.2.3", "1.2.4 1.2.4-rc.1", "1.2.3"),
        ("<=1.2", "1.2.99", "1.3.0-rc.1 1.3.0"),
        ("<1.2.3", "1.2.3-rc.1 1.2.2", "1.2.3"),
        ("1.2.3 - 2.3.4", "1.2.3 2.3.4", "2.3.5 1.2.2"),
        ("1.2 - 2", "1.2.0 2.99.0", "3.0.0 1.1.9"),
        ("^1 || ^3", "1.5.0 3.0.0", "2.0.0 4.0.0"),
        (">= 1.2, < 2", "1.2.0 1.9.0", "2.0.0"),
        ("=v1.2.3", "1.2.3", "1.2.4"),
        ("!=1.2.3", "1.2.4 1.2.2", "1.2.3"),
        (">=2.0.0-rc.1", "2.0.0-rc.1 2.0.0-rc.2 2.0.0", "2.0.0-beta.9 1.9.0"),
    ],
)
def test_range_membership(range_text: str, inside: str, outside: str) -> None:
    """Each range contains exactly the versions node-semver (includePrerelease) puts in it."""
    for version in inside.split():
        assert contains(range_text, version), (range_text, version)
    for version in outside.split():
        assert not contains(range_text, version), (range_text, version)


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (SelectionRule(range=">=1 <<2"), "range"),
        (SelectionRule(range="^x.y.z.w"), "range"),
        (SelectionRule(range="  "), "range"),
        (SelectionRule(range="1.2.3 -"), "range"),
        (SelectionRule(include="([a-z"), "include"),
        (SelectionRule(exclude=("ok", "(unclosed")), "exclude"),
        (SelectionRule(include=r"^(?P<v>\d+)$", extract="$version"), "extract"),
        (SelectionRule(include=r"^\d+$", extract="plain"), "extract"),
        (SelectionRule(extract="$v"), "extract"),
        (SelectionRule(strategy="calver"), "calver"),
        (SelectionRule(strategy="calver", calver="MM.DD"), "calver"),
        (SelectionRule(strategy="calver", calver="YYYY.YYYY"), "calver"),
        (SelectionRule(strategy="numeric", range="^1"), "range"),
        (SelectionRule(strategy="lexical", allow="minor"), "allow"),
        (SelectionRule(calver="YYYY"), "calver"),
        (SelectionRule(follow="latest"), "follow"),
        (SelectionRule(min_age=timedelta(hours=-1)), "min_age"),
        (SelectionRule(strategy="newest"), "strategy"),  # type: ignore[arg-type]
        (SelectionRule(order="up"), "order"),  # type: ignore[arg-type]
    ],
)
def test_validate_rule_names_the_bad_field(rule: SelectionRule, field: str) -> None:
    """A bad range, regex, template, format or combination raises SelectionError for its field."""
    with pytest.raises(SelectionError) as err:
        validate_rule(rule)
    assert err.value.field == field
    assert str(err.value)


@pytest.mark.parametrize(
    "rule",
    [
        SelectionRule(),
        SelectionRule(range="^1.2 || ~2.0.1 || 3.x || >=4 <5 || 6.0.0 - 6.2"),
        SelectionRule(include=r"^v?(?<version>\d+\.\d+\.\d+)(-alpine)?$", extract="$version"),
        SelectionRule(strategy="calver", calver="YYYYMMDD-N", order="desc"),
        SelectionRule(strategy="digest", follow="latest"),
        SelectionRule(min_age=timedelta(days=2), ignore=("1.2.x", "3.0.0")),
    ],
)
def test_validate_rule_accepts_sound_rules(rule: SelectionRule) -> None:
    """Sound rules pass validation without error."""
    validate_rule(rule)


def test_range_error_message_points_at_the_bad_part() -> None:
    """The message quotes the whole range and the part that could not be read."""
    with pytest.raises(SelectionError, match=r"range '>=1 <<2'.*'<<2'|'<2'"):
        validate_rule(SelectionRule(range=">=1 <<2"))


@pytest.mark.parametrize(
    ("tag", "version", "prerelease", "variant"),
    [
        ("1.2.3", "1.2.3", "", ""),
        ("v1.2.3-rc.1", "1.2.3-rc.1", "rc.1", ""),
        ("1.2.3-alpine", "1.2.3", "", "alpine"),
        ("1.2.3-rc.1-alpine", "1.2.3-rc.1", "rc.1", "alpine"),
        ("1.2.3-alpine3.19", "1.2.3", "", "alpine3.19"),
        ("1.2.3-beta2-slim-bookworm", "1.2.3-beta2", "beta2", "slim-bookworm"),
        ("1.2.3-1", "1.2.3-1", "1", ""),
        ("1.2.3-dev", "1.2.3-dev", "dev", ""),
        ("1.2.3-M1", "1.2.3-M1", "M1", ""),
        ("1.2-alpine", "1.2.0", "", "alpine"),
        ("3.13.0rc2", "3.13.0-rc2", "rc2", ""),
        ("3.7.0b1-slim", "3.7.0-b1", "b1", "slim"),
    ],
)
def test_tag_reading_separates_prerelease_from_variant(
    tag: str, version: str, prerelease: str, variant: str
) -> None:
    """Prerelease words (rc, beta, dev, pre, M1…) are prereleases; other suffixes are variants."""
    parsed = parse_tag(tag)
    assert parsed is not None
    assert (parsed.version, parsed.prerelease, parsed.variant) == (version, prerelease, variant)


def test_build_metadata_spelled_with_underscore() -> None:
    """Tags cannot hold '+', so '_' introduces build metadata, which does not change precedence."""
    a, b = parse_tag("1.2.3_build.5"), parse_tag("1.2.3")
    assert a is not None and b is not None
    assert (a.build, a.key) == ("build.5", b.key)


def test_rule_built_with_lists_still_works() -> None:
    """A rule whose exclude/ignore are lists (not tuples) is compiled instead of failing to hash."""
    rule = SelectionRule(exclude=[r"^2\."], ignore=["1.1.0"])  # type: ignore[arg-type]
    validate_rule(rule)
    assert select(["1.0.0", "1.1.0", "2.0.0"], rule).tag == "1.0.0"
