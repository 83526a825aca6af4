"""Strategies numeric, lexical, calver, newest-build and digest, including the anchors' bugs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imagebot.core.selection import SelectionRule, TagInfo, select

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("tags", "rule", "want"),
    [
        ("1 2 10 9", SelectionRule(strategy="numeric"), "10"),
        ("1 2 10 9", SelectionRule(strategy="numeric", order="desc"), "1"),
        ("1.5 1.25 1.10", SelectionRule(strategy="numeric"), "1.5"),
        ("20240101 20231231 latest", SelectionRule(strategy="numeric"), "20240101"),
        # Flux's numerical policy failed the whole image on one stray tag; here it is skipped.
        ("100 101 stray-tag 99", SelectionRule(strategy="numeric"), "101"),
        ("abc", SelectionRule(strategy="numeric"), None),
    ],
)
def test_numeric(tags: str, rule: SelectionRule, want: str | None) -> None:
    """Numeric orders by value (not text), honours order, and skips unreadable tags."""
    assert select(tags.split(), rule).tag == want


def test_numeric_stray_tag_gets_its_own_reason() -> None:
    """The stray tag is rejected as 'not a number' while the others still compete."""
    decision = select(["5", "oops", "7"], SelectionRule(strategy="numeric"))
    assert decision.tag == "7"
    assert decision.verdict("oops").reason == "rejected: not a number"


@pytest.mark.parametrize(
    ("tags", "order", "want"),
    [
        ("RELEASE.2024-01-05 RELEASE.2024-03-01 RELEASE.2023-12-31", "asc", "RELEASE.2024-03-01"),
        ("b a c", "asc", "c"),
        ("b a c", "desc", "a"),
    ],
)
def test_lexical(tags: str, order: str, want: str) -> None:
    """Lexical compares text; asc picks the last, desc the first."""
    rule = SelectionRule(strategy="lexical", order=order)  # type: ignore[arg-type]
    assert select(tags.split(), rule).tag == want


def test_lexical_never_picks_build_tags_unasked() -> None:
    """Lexically 'sha-…' and 'latest' sort above '1.x', yet neither is chosen without include."""
    decision = select(
        ["1.0", "latest", "sha-abc1234", "deadbeef12"], SelectionRule(strategy="lexical")
    )
    assert decision.tag == "1.0"
    assert "mutable" in decision.verdict("latest").reason
    assert "commit-hash" in decision.verdict("sha-abc1234").reason
    assert "commit-hash" in decision.verdict("deadbeef12").reason


def test_include_asks_for_hash_tags() -> None:
    """An include pattern that matches hash tags makes them eligible."""
    rule = SelectionRule(strategy="lexical", include=r"^sha-[0-9a-f]+$")
    assert select(["1.0", "sha-abc1234", "sha-fff0000"], rule).tag == "sha-fff0000"


@pytest.mark.parametrize(
    ("fmt", "tags", "want"),
    [
        ("YYYY.MM.DD", "2024.1.5 2024.01.15 2023.12.31", "2024.01.15"),
        ("YYYY.0M.0D", "2024.01.05 2024.02.01 2024.1.9", "2024.02.01"),
        ("YYYYMMDD-N", "20240105-1 20240105-12 20240104-99", "20240105-12"),
        ("DD.MM.YYYY", "31.12.2023 01.02.2024 15.01.2024", "01.02.2024"),
        ("YY.0M.MICRO", "24.04.3 24.04.10 23.12.1", "24.04.10"),
        ("YYYY.MM.DD", "2024.13.01 2024.12.01", "2024.12.01"),
    ],
)
def test_calver(fmt: str, tags: str, want: str) -> None:
    """Calver orders by the date (then counter) the format names, whatever its layout."""
    assert select(tags.split(), SelectionRule(strategy="calver", calver=fmt)).tag == want


def test_calver_rejects_tags_off_format_with_reason() -> None:
    """A tag not in the format (or with month 13) is rejected, naming the format."""
    decision = select(["2024.13.01", "v1.0"], SelectionRule(strategy="calver", calver="YYYY.MM.DD"))
    assert decision.tag is None
    assert decision.verdict("2024.13.01").reason == "rejected: does not follow calver YYYY.MM.DD"


def test_calver_desc_picks_earliest() -> None:
    """order: desc picks the earliest date."""
    rule = SelectionRule(strategy="calver", calver="YYYY.MM.DD", order="desc")
    assert select(["2024.1.5", "2023.6.1"], rule).tag == "2023.6.1"


def test_newest_build_picks_latest_creation() -> None:
    """newest-build orders by image creation time, not by name."""
    tags = [TagInfo("b", created=at(1)), TagInfo("a", created=at(3)), TagInfo("c", created=at(2))]
    assert select(tags, SelectionRule(strategy="newest-build")).tag == "a"


def test_newest_build_tie_never_favours_latest() -> None:
    """Argo CD Image Updater could pick `latest` on a tie; here the release wins even when asked."""
    tags = [
        TagInfo("latest", created=at(5)),
        TagInfo("v1.4.0", created=at(5)),
        TagInfo("v1.3.0", created=at(2)),
    ]
    assert select(tags, SelectionRule(strategy="newest-build")).tag == "v1.4.0"
    everything = SelectionRule(strategy="newest-build", include=r".*")
    assert select(tags, everything).tag == "v1.4.0"
    assert select(list(reversed(tags)), everything).tag == "v1.4.0"


def test_newest_build_tie_is_deterministic_between_versions() -> None:
    """Two versions built at the same instant: the higher version wins, in any input order."""
    tags = [TagInfo("1.2", created=at(1)), TagInfo("1.2.7", created=at(1))]
    rule = SelectionRule(strategy="newest-build")
    assert select(tags, rule).tag == select(tags[::-1], rule).tag == "1.2.7"


def test_newest_build_without_creation_time_is_rejected() -> None:
    """A tag the scan has no creation time for cannot be ordered and says so."""
    decision = select(["x1", TagInfo("x2", created=at(1))], SelectionRule(strategy="newest-build"))
    assert decision.tag == "x2"
    assert decision.verdict("x1").reason == "rejected: creation time unknown"


def test_newest_build_no_downgrade_to_older_build() -> None:
    """Running a newer build that no longer qualifies, an older one needs downgrade: true."""
    tags = [TagInfo("old", created=at(1)), TagInfo("run", created=at(4))]
    rule = SelectionRule(strategy="newest-build", exclude=("^run$",))
    decision = select(tags, rule, current="run")
    assert decision.tag is None
    assert "built before the running run" in decision.verdict("old").reason
    allowed = SelectionRule(strategy="newest-build", exclude=("^run$",), downgrade=True)
    assert select(tags, allowed, current="run").tag == "old"


def test_digest_follows_the_mutable_tag() -> None:
    """strategy digest chooses the followed tag and reports its digest."""
    tags = [TagInfo("latest", digest="sha256:" + "a" * 64), TagInfo("1.0.0", digest="sha256:b")]
    decision = select(tags, SelectionRule(strategy="digest", follow="latest"))
    assert (decision.tag, decision.digest) == ("latest", "sha256:" + "a" * 64)
    assert "follows only 'latest'" in decision.verdict("1.0.0").reason


def test_digest_defaults_to_following_the_running_tag() -> None:
    """Without follow, strategy digest tracks the tag that is running (as Argo CD's digest does)."""
    tags = [TagInfo("stable", digest="sha256:c"), TagInfo("edge", digest="sha256:d")]
    decision = select(tags, SelectionRule(strategy="digest"), current="edge")
    assert (decision.tag, decision.digest) == ("edge", "sha256:d")


def test_digest_unknown_means_no_choice() -> None:
    """If the followed tag is missing or has no digest, nothing is chosen and the reason says so."""
    assert select(["1.0"], SelectionRule(strategy="digest", follow="latest")).tag is None
    decision = select(["latest"], SelectionRule(strategy="digest", follow="latest"))
    assert decision.tag is None
    assert "no known digest" in decision.reason
