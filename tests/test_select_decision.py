"""Decision values: verdict sequences and the explanation lines the engine and CLI print."""

from __future__ import annotations

from imagebot.core.selection import (
    SelectionRule,
    Verdict,
    explain_lines,
    select,
)


def test_explain_lines_mark_chosen_accepted_and_rejected() -> None:
    """The summary comes first, then one aligned line per tag: * chosen, + accepted, - rejected."""
    decision = select(["1.0.0", "10.0.0-rc.1", "1.1.0"], SelectionRule(range="^1"))
    assert explain_lines(decision) == [
        "1.1.0: highest version in '^1' (2 of 3 tags qualify)",
        "+ 1.0.0        accepted; ranks below the chosen 1.1.0",
        "- 10.0.0-rc.1  rejected: prerelease (set prerelease: true to allow)",
        "* 1.1.0        chosen: highest version in '^1'",
    ]


def test_verdicts_behave_like_a_tuple() -> None:
    """Verdicts index, slice, compare equal to a tuple of Verdict and support len."""
    decision = select(["1.0.0", "x"], SelectionRule())
    expected = (
        Verdict("1.0.0", True, "chosen: highest version"),
        Verdict("x", False, "rejected: not a semver version"),
    )
    assert len(decision.verdicts) == 2
    assert decision.verdicts == expected
    assert decision.verdicts[1] == expected[1]
    assert tuple(decision.verdicts[:1]) == expected[:1]
    assert decision.verdict("x").accepted is False


def test_no_choice_summary_counts_the_commonest_reasons() -> None:
    """When nothing qualifies the summary names how many tags failed which gate."""
    decision = select(["2.0.0", "3.0.0", "latest"], SelectionRule(range="^1"))
    assert decision.tag is None
    assert decision.reason == (
        "no tag qualifies among 3: 2 outside range '^1'; "
        "1 'latest' is a mutable tag, chosen only when include asks for it"
    )


def test_running_tag_that_is_not_a_version_is_noted() -> None:
    """A running tag the strategy cannot read is named in the summary; choice still happens."""
    decision = select(["1.0.0"], SelectionRule(), current="latest")
    assert decision.tag == "1.0.0"
    assert decision.reason.endswith("; the running latest is not a version")


def test_already_running_is_said() -> None:
    """When the best tag is the running one the reason says it is already running."""
    decision = select(["1.0.0", "0.9.0"], SelectionRule(), current="1.0.0")
    assert decision.tag == "1.0.0"
    assert decision.verdict("1.0.0").reason == "chosen: highest version, already running"


def test_every_gate_of_the_chain_judges_every_tag_without_changing_the_choice() -> None:
    """Each tag carries each gate's verdict in chain order — a tag the first gate rejects is
    still judged by the later ones — and the choice is the one the first rejections give."""
    tags = ["0.9.0-rc.1", "1.0.0", "1.2.0", "2.0.0", "junk"]
    rule = SelectionRule(allow="minor")
    decision = select(tags, rule, current="1.0.0")
    assert decision.tag == "1.2.0"
    assert decision.gates == (
        *("build-tag", "read", "partial", "precision"),
        *("prerelease", "variant", "allow", "downgrade"),
    ), "the documented order, the gates this rule switches on"

    def failing(tag: str) -> list[str]:
        return [g for g, r in decision.verdict(tag).by_gate(decision.gates) if r is not None]

    assert failing("0.9.0-rc.1") == ["prerelease", "allow", "downgrade"], "all three said no"
    assert failing("2.0.0") == ["allow"]
    assert failing("1.2.0") == []
    judged = decision.verdict("junk").by_gate(decision.gates)
    assert [g for g, _ in judged] == ["build-tag", "read"], "nothing after read judges it"
    assert judged[0][1] is None and judged[1][1] is not None
    first = decision.verdict("0.9.0-rc.1")
    assert first.rejection is not None and first.rejection.gate == "prerelease"
