"""The values selection works on: a policy's rule, the tags a registry lists, the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, overload

from .semver_shapes import pick

Strategy = Literal["semver", "numeric", "lexical", "calver", "newest-build", "digest"]
STRATEGIES: tuple[Strategy, ...] = (
    "semver",
    "numeric",
    "lexical",
    "calver",
    "newest-build",
    "digest",
)


@dataclass(frozen=True)
class SelectionRule:
    """How one image policy picks a version; every field has a safe default."""

    strategy: Strategy = "semver"
    #: semver range: comparisons, ``^``, ``~``, ``1.x``/``*``, hyphen ranges, ``||``, commas.
    range: str | None = None
    #: accept prereleases (``-rc.1``, ``-beta.2``...); a running prerelease may always reach
    #: its own release and newer prereleases of that same release.
    prerelease: bool = False
    #: accept partial versions such as ``1.2`` (read as 1.2.0) and ``1`` (1.0.0).
    partial: bool = False
    #: regex a tag must match (searched, as Flux and Argo CD do); named groups feed ``extract``.
    include: str | None = None
    #: regexes that reject a tag they match.
    exclude: tuple[str, ...] = ()
    #: template over include's named groups (``$version``, ``${ts}``): the value ordered by.
    extract: str | None = None
    #: numeric/lexical/calver: ``asc`` -> the highest wins, ``desc`` -> the lowest wins.
    order: Literal["asc", "desc"] = "asc"
    #: calver format, e.g. ``YYYY.MM.DD``, ``YYYYMMDD-N``, ``YY.0M.MICRO``.
    calver: str | None = None
    #: ``match``: ``1.2.3-alpine`` only moves to ``*-alpine``; ``any``: suffixes are ignored.
    variant: Literal["match", "any"] = "match"
    #: how far one step from the running version may go.
    allow: Literal["major", "minor", "patch"] = "major"
    #: allow choosing a version older than the running one.
    downgrade: bool = False
    #: a tag must be at least this old (creation time, else first-seen time).
    min_age: timedelta | None = None
    #: tags never chosen: exact tags, semver ranges (semver) or globs (other strategies).
    ignore: tuple[str, ...] = ()
    #: strategy ``digest``: the mutable tag whose digest is followed (default: the running tag).
    follow: str | None = None


@dataclass(frozen=True)
class TagInfo:
    """A tag with what the registry scan knows about it."""

    name: str
    created: datetime | None = None
    first_seen: datetime | None = None
    digest: str | None = None


class TagInfos:
    """What the registry scan knows of each input tag, by position; by name, the first tag
    of that name. A dict of 100,000 names cost a fifth of the selection budget to build, and a
    choice needs it only for the running and the chosen tag (a few ``list.index`` calls)."""

    _INDEX_LOOKUPS = 8

    def __init__(self, names: list[str] | None, items: list[TagInfo | None] | None) -> None:
        self._names, self._items = names, items
        self._lookups = 0
        self._by_name: dict[str, TagInfo | None] | None = None

    def get(self, name: str) -> TagInfo | None:
        if self._names is None or self._items is None:
            return None
        if self._by_name is None:
            self._lookups += 1
            if self._lookups <= self._INDEX_LOOKUPS:  # a handful of lookups: no dict
                try:
                    return self._items[self._names.index(name)]
                except ValueError:
                    return None
            self._by_name = dict(zip(reversed(self._names), reversed(self._items), strict=True))
        return self._by_name.get(name)

    def at(self, positions: list[int]) -> list[TagInfo | None]:
        """The info of the tags at ``positions`` (None where the scan knows nothing)."""
        if self._items is None:
            return [None] * len(positions)
        return pick(positions, self._items)


@dataclass(frozen=True)
class Verdict:
    """Why one tag was accepted or rejected."""

    tag: str
    accepted: bool
    reason: str


class PerTagReason(str):
    """A rejection shared by many tags whose exact words depend on the tag: worked out for a
    tag only when its verdict is read. Tags that are not versions are the usual case: whether
    ``sha-f00d123`` is a commit hash or just not a version costs a regex match per tag to say,
    and 10,000 such tags are a fifth of the budget for a choice nobody may ever explain."""

    resolve: Callable[[str], str]

    def __new__(cls, summary: str, resolve: Callable[[str], str]) -> PerTagReason:
        reason = super().__new__(cls, summary)
        reason.resolve = resolve
        return reason


def reason_for(name: str, reason: str) -> str:
    """The words of ``reason`` for tag ``name`` (see ``PerTagReason``)."""
    return reason.resolve(name) if type(reason) is PerTagReason else reason


class Verdicts(Sequence[Verdict]):
    """One verdict per input tag, built on first access.

    Choosing from 100,000 tags must take well under a tenth of a second; building 100,000
    objects nobody reads would take most of it, so ``select`` records reasons as shared strings
    and this sequence turns them into ``Verdict`` values only when someone asks (``--explain``,
    ``plan``).
    """

    __slots__ = ("_accepted", "_built", "_names", "_other", "_reasons")

    def __init__(
        self,
        names: Sequence[str],
        reasons: Sequence[str | None],
        accepted: dict[str, str] | None = None,
        other_accepted: str = "accepted",
    ) -> None:
        """``reasons[i]`` is None for an accepted tag, whose reason is ``accepted[name]``
        (the chosen tag, ties) or else ``other_accepted``."""
        self._names = names
        self._reasons = reasons
        self._accepted = accepted or {}
        self._other = other_accepted
        self._built: tuple[Verdict, ...] | None = None

    def _all(self) -> tuple[Verdict, ...]:
        if self._built is None:
            accepted, other = self._accepted, self._other
            self._built = tuple(
                Verdict(name, True, accepted.get(name, other))
                if reason is None
                else Verdict(name, False, reason_for(name, reason))
                for name, reason in zip(self._names, self._reasons, strict=True)
            )
        return self._built

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> Verdict: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Verdict]: ...
    def __getitem__(self, index: int | slice) -> Verdict | Sequence[Verdict]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Verdicts):
            return self._all() == other._all()
        if isinstance(other, tuple):
            return self._all() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"Verdicts({len(self)} tags)"


@dataclass(frozen=True)
class Decision:
    """The chosen tag (None: nothing qualifies), why, and a verdict for every input tag."""

    tag: str | None
    reason: str
    verdicts: Sequence[Verdict]
    #: digest of the chosen tag when the scan knew it (always set by strategy ``digest``).
    digest: str | None = None

    def verdict(self, tag: str) -> Verdict:
        """The verdict for ``tag``; KeyError if it was not an input."""
        for v in self.verdicts:
            if v.tag == tag:
                return v
        raise KeyError(tag)


def explain_lines(decision: Decision) -> list[str]:
    """Human lines for a decision: the summary, then one line per tag in input order."""
    lines = [decision.reason]
    width = max((len(v.tag) for v in decision.verdicts), default=0)
    for v in decision.verdicts:
        mark = "*" if v.tag == decision.tag else ("+" if v.accepted else "-")
        lines.append(f"{mark} {v.tag:<{width}}  {v.reason}")
    return lines
