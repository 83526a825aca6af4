"""Strategy semver: ranges, prereleases, variants, partial versions, bounds (table-driven)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from imagebot.core.selection import SelectionRule, select


@dataclass(frozen=True)
class Case:
    id: str
    tags: str
    rule: SelectionRule = field(default_factory=SelectionRule)
    current: str | None = None
    want: str | None = None


CASES = [
    Case("highest-without-range", "1.0.0 1.10.0 1.9.0 0.9.9", want="1.10.0"),
    Case("caret-major", "1.0.0 1.1.0 2.0.0", SelectionRule(range="^1"), want="1.1.0"),
    Case("caret-zero-minor", "0.2.3 0.2.9 0.3.0", SelectionRule(range="^0.2.3"), want="0.2.9"),
    Case("caret-zero-zero", "0.0.3 0.0.4 0.1.0", SelectionRule(range="^0.0.3"), want="0.0.3"),
    Case("tilde-patch", "1.2.3 1.2.9 1.3.0", SelectionRule(range="~1.2.3"), want="1.2.9"),
    Case("tilde-major", "1.2.3 1.9.0 2.0.0", SelectionRule(range="~1"), want="1.9.0"),
    Case("tilde-ruby-spelling", "1.2.3 1.2.9 1.3.0", SelectionRule(range="~>1.2"), want="1.2.9"),
    Case("x-range", "1.2.0 1.2.7 1.3.0", SelectionRule(range="1.2.x"), want="1.2.7"),
    Case("star-range", "1.0.0 3.0.0", SelectionRule(range="*"), want="3.0.0"),
    Case("star-minor", "1.0.0 1.5.0 2.0.0", SelectionRule(range="1.*"), want="1.5.0"),
    Case("bare-major", "1.0.0 1.5.0 2.0.0", SelectionRule(range="1"), want="1.5.0"),
    Case("exact", "1.0.0 1.5.0 2.0.0", SelectionRule(range="=1.0.0"), want="1.0.0"),
    Case("and-spaces", "1.1.0 1.4.0 2.0.0", SelectionRule(range=">=1.2 <2"), want="1.4.0"),
    Case("and-commas-flux", "1.1.0 1.4.0 2.0.0", SelectionRule(range=">= 1.2, < 2"), want="1.4.0"),
    Case("or", "1.1.0 2.5.0 3.1.0 4.0.0", SelectionRule(range="^1 || ^3"), want="3.1.0"),
    Case("hyphen", "1.2.3 2.3.4 2.3.5", SelectionRule(range="1.2.3 - 2.3.4"), want="2.3.4"),
    Case(
        "hyphen-partial-upper",
        "1.2.3 2.3.9 2.4.0",
        SelectionRule(range="1.2.3 - 2.3"),
        want="2.3.9",
    ),
    Case("greater-partial", "1.9.0 2.0.0 2.1.0", SelectionRule(range=">1"), want="2.1.0"),
    Case(
        "less-partial-excludes-line",
        "1.9.0 2.0.0-rc.1 2.0.0",
        SelectionRule(range="<2", prerelease=True),
        want="1.9.0",
    ),
    Case("not-equal", "1.0.0 1.0.1", SelectionRule(range=">=1 !=1.0.1"), want="1.0.0"),
    Case("v-prefix-kept", "v1.0.0 v1.2.0 v2.0.0", SelectionRule(range="^1"), want="v1.2.0"),
    Case("v-prefix-in-range", "1.0.0 1.2.0", SelectionRule(range="^v1.0"), want="1.2.0"),
    # Prereleases.
    Case("prerelease-excluded", "1.0.0 1.1.0-rc.1", want="1.0.0"),
    Case(
        "prerelease-allowed", "1.0.0 1.1.0-rc.1", SelectionRule(prerelease=True), want="1.1.0-rc.1"
    ),
    Case(
        "prerelease-numeric-order",
        "1.0.0-rc.2 1.0.0-rc.10",
        SelectionRule(prerelease=True),
        want="1.0.0-rc.10",
    ),
    Case(
        "prerelease-word-order",
        "1.0.0-alpha 1.0.0-beta 1.0.0-alpha.1",
        SelectionRule(prerelease=True),
        want="1.0.0-beta",
    ),
    Case(
        "caret-excludes-next-major-rc",
        "1.1.0 2.0.0-rc.1",
        SelectionRule(range="^1", prerelease=True),
        want="1.1.0",
    ),
    # renovate#20106: a running prerelease must reach its release.
    Case("rc-to-release", "3.0.0-rc.0 3.0.0-rc.1 3.0.0", current="3.0.0-rc.0", want="3.0.0"),
    Case(
        "rc-to-release-with-range",
        "3.0.0-rc.0 3.0.0",
        SelectionRule(range="^3.0.0-rc.0"),
        current="3.0.0-rc.0",
        want="3.0.0",
    ),
    Case(
        "rc-to-newer-rc-same-line",
        "3.0.0-rc.0 3.0.0-rc.1 3.1.0-rc.1",
        current="3.0.0-rc.0",
        want="3.0.0-rc.1",
    ),
    # Keel needed identical prerelease strings; any prerelease word orders here.
    Case(
        "rc-to-beta-by-precedence",
        "1.0.0-alpha.3 1.0.0-beta.1",
        SelectionRule(prerelease=True),
        current="1.0.0-alpha.3",
        want="1.0.0-beta.1",
    ),
    Case(
        "range-names-prerelease",
        "2.0.0-rc.1 2.0.0-rc.2 1.9.0",
        SelectionRule(range=">=2.0.0-rc.1"),
        want="2.0.0-rc.2",
    ),
    # Variants.
    Case("plain-stays-plain", "1.2.3 1.2.4-alpine 1.2.4", current="1.2.3", want="1.2.4"),
    Case("plain-never-to-variant", "1.2.3 1.2.4-alpine", current="1.2.3", want="1.2.3"),
    Case(
        "variant-stays-variant",
        "1.2.3-alpine 1.2.4 1.2.4-alpine 1.3.0-slim",
        current="1.2.3-alpine",
        want="1.2.4-alpine",
    ),
    Case(
        "variant-with-prerelease",
        "1.2.3-alpine 1.3.0-rc.1-alpine",
        SelectionRule(prerelease=True),
        current="1.2.3-alpine",
        want="1.3.0-rc.1-alpine",
    ),
    Case(
        "variant-prerelease-excluded",
        "1.2.3-alpine 1.3.0-rc.1-alpine",
        current="1.2.3-alpine",
        want="1.2.3-alpine",
    ),
    Case(
        "variant-any",
        "1.2.3 1.2.4-alpine",
        SelectionRule(variant="any"),
        current="1.2.3",
        want="1.2.4-alpine",
    ),
    Case("no-current-plain-only", "1.2.3 1.2.4-alpine", want="1.2.3"),
    Case(
        "include-picks-variant",
        "1.2.3 1.2.4-alpine",
        SelectionRule(include=r"-alpine$"),
        want="1.2.4-alpine",
    ),
    # Partial versions and build metadata.
    Case("partial-rejected", "1.2 1.1.0", want="1.1.0"),
    Case("partial-accepted", "1.2 1.1.0", SelectionRule(partial=True), want="1.2"),
    Case("full-beats-partial-tie", "1.2 1.2.0", SelectionRule(partial=True), want="1.2.0"),
    Case("build-never-newer", "1.2.3_build.9 1.2.3", want="1.2.3"),
    Case(
        "build-tie-keeps-current",
        "1.2.3_build.9 1.2.3",
        current="1.2.3_build.9",
        want="1.2.3_build.9",
    ),
    # Bounds.
    Case(
        "allow-minor",
        "1.2.0 1.9.0 2.0.0",
        SelectionRule(allow="minor"),
        current="1.2.0",
        want="1.9.0",
    ),
    Case(
        "allow-patch",
        "1.2.0 1.2.5 1.3.0",
        SelectionRule(allow="patch"),
        current="1.2.0",
        want="1.2.5",
    ),
    Case("no-downgrade", "1.0.0 1.1.0", SelectionRule(range="^1"), current="2.0.0", want=None),
    Case(
        "downgrade-allowed",
        "1.0.0 1.1.0",
        SelectionRule(range="^1", downgrade=True),
        current="2.0.0",
        want="1.1.0",
    ),
    Case("ignore-tag", "1.0.0 1.1.0", SelectionRule(ignore=("1.1.0",)), want="1.0.0"),
    Case("ignore-range", "1.0.0 1.1.0 1.1.5 1.2.0", SelectionRule(ignore=("1.2.x",)), want="1.1.5"),
    Case(
        "ignore-glob",
        "1.0.0 1.2.0-debug",
        SelectionRule(ignore=("*-debug",), variant="any"),
        want="1.0.0",
    ),
    Case(
        "ignore-tag-with-suffix-is-no-range",
        "16.1.0 16.2.0-alpine 16-alpine",
        SelectionRule(ignore=("16-alpine",), variant="any"),
        want="16.2.0-alpine",
    ),
    # Ranges as Flux writes them (Masterminds): a prerelease after an x, != of a partial.
    Case(
        "x-with-prerelease-masterminds",
        "1.0.0 1.1.0 1.2.0-alpha.1 2.0.0-rc.1",
        SelectionRule(range="^1.x-0", range_style="masterminds"),
        want="1.2.0-alpha.1",
    ),
    Case(
        "x-with-prerelease-npm",
        "1.0.0-rc.1 1.0.0-rc.2 1.2.0-alpha.1",
        SelectionRule(range="^1.x-0"),
        want="1.0.0-rc.2",
    ),
    Case("not-partial-major", "3.9.0 4.1.0", SelectionRule(range="!=4.x"), want="3.9.0"),
    Case("not-partial-minor", "4.0.9 4.1.5 4.1.0", SelectionRule(range="!=4.1"), want="4.0.9"),
    Case("not-full", "4.0.9 4.1.5 4.1.0", SelectionRule(range="!=4.1.5"), want="4.1.0"),
    # Leading zeros, as Ubuntu writes its releases (and Renovate, Flux, Argo CD read them).
    Case(
        "leading-zeros",
        "20.04 22.04 22.10 24.04",
        SelectionRule(allow="minor"),
        current="22.04",
        want="22.10",
    ),
    Case(
        "leading-zeros-range",
        "2024.01.15 2024.02.01 2025.01.01",
        SelectionRule(range="~2024.01"),
        want="2024.01.15",
    ),
    # Docker official images write prereleases without a hyphen.
    Case("docker-rc-to-release", "3.12.0 3.13.0rc2 3.13.0", current="3.12.0", want="3.13.0"),
    Case("docker-rc-not-chosen", "3.12.0 3.13.0rc2", current="3.12.0", want="3.12.0"),
    Case(
        "docker-rc-numeric-order",
        "3.13.0rc2 3.13.0rc10 3.13.0b4",
        SelectionRule(prerelease=True),
        want="3.13.0rc10",
    ),
    Case(
        "docker-beta-variant",
        "3.6.0-slim 3.7.0b1-slim 3.7.0b1",
        SelectionRule(prerelease=True),
        current="3.6.0-slim",
        want="3.7.0b1-slim",
    ),
    # Tags that are not versions.
    Case("hash-and-mutable-skipped", "latest sha-abc1234 deadbeef1 1.0.0 main", want="1.0.0"),
    Case("four-part-skipped", "1.2.3.4 1.2.3", want="1.2.3"),
    Case("nothing", "latest main", want=None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_semver_table(case: Case) -> None:
    """Each row: the semver strategy picks the tag the spec of its options names."""
    decision = select(case.tags.split(), case.rule, current=case.current)
    assert decision.tag == case.want, decision.reason


def test_every_tag_gets_exactly_one_verdict_in_input_order() -> None:
    """Verdicts follow the input, one per tag; a tag listed twice gets the same verdict twice."""
    tags = ["1.0.0", "latest", "1.0.0", "2.0.0-rc.1"]
    decision = select(tags, SelectionRule())
    assert decision.tag == "1.0.0"
    assert [v.tag for v in decision.verdicts] == tags
    assert [v.accepted for v in decision.verdicts] == [True, False, True, False]
    assert decision.verdicts[0] == decision.verdicts[2]


def test_running_precision_is_kept() -> None:
    """A running 12.14 moves to 12.15 (not 12.15.0), reading partial tags of its precision."""
    tags = ["12.14", "12.15", "12.15.0", "12", "13"]
    assert select(tags, SelectionRule(), current="12.14").tag == "12.15"
    off = SelectionRule(keep_precision=False, partial=True)
    assert select(tags, off, current="12.14").tag == "13"
    assert select(tags, SelectionRule(keep_precision=False), current="12.14").tag == "12.15.0"


def test_keep_precision_considers_only_the_running_precision() -> None:
    """Running 20.11, only two-number tags are candidates: 20.12, not the newer 20.12.2 or
    21.0.0; a running full version likewise never moves to a partial one."""
    assert (
        select(["20.11", "20.12", "20.12.2", "21.0.0"], SelectionRule(), current="20.11").tag
        == "20.12"
    )
    assert select(["12.14", "12.15", "12.15.1"], SelectionRule(), current="12.14").tag == "12.15"
    full = SelectionRule(partial=True)
    assert select(["1.2.3", "1.3", "1.2.4"], full, current="1.2.3").tag == "1.2.4"
    off = SelectionRule(keep_precision=False)
    assert select(["12.14", "12.15", "12.15.1"], off, current="12.14").tag == "12.15.1"


def test_masterminds_range_style_admits_every_prerelease_in_range() -> None:
    """>=1.2.0-0 admits 1.3.0-rc.1 when read as Flux and Argo CD do, not as npm does."""
    tags = ["1.2.0", "1.3.0-rc.1"]
    assert select(tags, SelectionRule(range=">=1.2.0-0")).tag == "1.2.0"
    ported = SelectionRule(range=">=1.2.0-0", range_style="masterminds")
    assert select(tags, ported).tag == "1.3.0-rc.1"
    assert select(tags, SelectionRule(range=">=1.2.0", range_style="masterminds")).tag == "1.2.0"
