"""The values selection works on: a policy's rule, the tags a registry lists, the answer.

``SelectionRule`` is the one declaration of every selection field: the policy file's image
entry (``core.policy``) and ``imagebot select``'s options (``cli.select``) are both built from
its fields, their types, defaults and the ``help`` in their metadata.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

StrategyName = Literal["semver", "numeric", "lexical", "calver", "newest-build", "digest"]


def _doc(help: str, block: str | None = None) -> dict[str, str | None]:
    """A rule field's metadata: its help, and where a policy file writes it (``tags.include``)
    when that is not the image entry itself. docs/policies.md says more on each."""
    return {"help": help, "block": block}


@dataclass(frozen=True)
class SelectionRule:
    """How one image policy picks a version; every field has a safe default."""

    strategy: StrategyName = field(default="semver", metadata=_doc("how tags are ordered"))
    range: str | None = field(default=None, metadata=_doc("semver range: ^1.2, ~1.2.3, >=1 <2"))
    prerelease: bool = field(default=False, metadata=_doc("allow prereleases (1.2.0-rc.1)"))
    partial: bool = field(default=False, metadata=_doc("read partial versions (1.2 as 1.2.0)"))
    keep_precision: bool = field(
        default=True, metadata=_doc("a running 12.14 moves to 12.15, not 12.15.0 (semver)")
    )
    range_style: Literal["npm", "masterminds"] = field(
        default="npm", metadata=_doc("masterminds: >=1.2.0-0 admits every prerelease in range")
    )
    include: str | None = field(default=None, metadata=_doc("regex a tag must match", "tags"))
    exclude: tuple[str, ...] = field(default=(), metadata=_doc("regex rejecting a tag", "tags"))
    extract: str | None = field(
        default=None, metadata=_doc("value to order by, from include's groups: '$v'", "tags")
    )
    order: Literal["asc", "desc"] = field(
        default="asc", metadata=_doc("numeric, lexical, calver: asc picks the highest")
    )
    calver: str | None = field(default=None, metadata=_doc("calver format, e.g. YYYY.MM.DD"))
    variant: Literal["match", "any"] = field(
        default="match", metadata=_doc("match: 1.2.3-alpine moves only to *-alpine")
    )
    allow: Literal["major", "minor", "patch"] = field(
        default="major", metadata=_doc("how far one update may move")
    )
    downgrade: bool = field(default=False, metadata=_doc("allow moving to a lower version"))
    replace_unreadable: bool = field(
        default=False, metadata=_doc("replace a running tag the strategy cannot read")
    )
    min_age: timedelta | None = field(default=None, metadata=_doc("minimum age, e.g. 2d"))
    ignore: tuple[str, ...] = field(default=(), metadata=_doc("tags, globs, ranges never chosen"))
    follow: str | None = field(default=None, metadata=_doc("digest: the tag to follow"))


@dataclass(frozen=True, slots=True)
class TagInfo:
    """A tag with what the registry scan knows about it."""

    name: str
    created: datetime | None = None
    first_seen: datetime | None = None
    digest: str | None = None


@dataclass(frozen=True)
class ImageScan:
    """What the registry said about one repository in this cycle: selection's input."""

    tags: tuple[TagInfo, ...] = ()
    digests: Mapping[str, str] = field(default_factory=dict)  # tag -> digest
    error: str | None = None
    fingerprint: str | None = None
    """A hash of the tag names in registry order, when the scan made one: selection under a
    rule that reads only names gives the same answer for the same fingerprint."""


class Rejection(NamedTuple):
    """Why a gate turned a tag away: the gate's name, words for people, values for JSON."""

    gate: str
    message: str
    data: Mapping[str, object] | None = None

    @property
    def reason(self) -> str:
        return f"rejected: {self.message}"

    @property
    def words(self) -> str:
        """The gate and its message, as status shows what an image waits for."""
        return f"{self.gate}: {self.message}"


@dataclass(slots=True)  # not frozen: building 100,000 frozen ones cost a tenth of a second
class Verdict:
    """Why one tag was accepted or rejected."""

    tag: str
    accepted: bool
    reason: str
    rejection: Rejection | None = field(default=None, compare=False)
    #: the rejections of the gates after ``rejection``'s, in chain order (the others pass)
    later: tuple[Rejection, ...] = field(default=(), compare=False)

    def by_gate(self, gates: Sequence[str]) -> GateVerdicts:
        """Each gate's verdict in chain order: its rejection, or None where it passed. The
        gates after read judge the version it read: a tag it cannot read stops there."""
        if self.rejection is None:
            return passed(tuple(gates))
        said = {r.gate: r for r in (self.rejection, *self.later)}
        out: list[tuple[str, Rejection | None]] = []
        for g in gates:
            out.append((g, r) if (r := said.get(g)) is not None else passed((g,))[0])
            if g == "read" and r is not None:
                break
        return tuple(out)


#: (gate, its rejection or None where the tag passed it), in chain order
GateVerdicts = tuple[tuple[str, Rejection | None], ...]


@functools.cache
def passed(gates: tuple[str, ...]) -> GateVerdicts:
    """Every gate of ``gates`` passed: one shared value per chain (a daemon keeps one per
    tag of every image)."""
    return tuple((g, None) for g in gates)


def gates_json(verdicts: GateVerdicts) -> list[dict[str, object]]:
    return [
        {"gate": g, "passed": True}
        if r is None
        else {"gate": g, "passed": False, "reason": r.message, "data": dict(r.data or {})}
        for g, r in verdicts
    ]


@dataclass(frozen=True)
class Decision:
    """The chosen tag (None: nothing qualifies, or stay), why, and a verdict for every tag."""

    tag: str | None
    reason: str
    verdicts: tuple[Verdict, ...]
    #: digest of the chosen tag when the scan knew it (always set by strategy ``digest``).
    digest: str | None = None
    #: the gates that judged every tag, in chain order
    gates: tuple[str, ...] = ()

    def verdict(self, tag: str) -> Verdict:
        """The verdict for ``tag``; KeyError if it was not an input."""
        return {v.tag: v for v in reversed(self.verdicts)}[tag]


def explain_lines(decision: Decision) -> list[str]:
    """Human lines for a decision: the summary, then one line per tag in input order."""
    lines = [decision.reason]
    width = max((len(v.tag) for v in decision.verdicts), default=0)
    for v in decision.verdicts:
        mark = "*" if v.tag == decision.tag else ("+" if v.accepted else "-")
        lines.append(f"{mark} {v.tag:<{width}}  {v.reason}")
    return lines
