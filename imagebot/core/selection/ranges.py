"""SemVer ranges as npm's node-semver writes them, plus the commas Flux users bring along.

Grammar: alternatives joined by ``||``; each is a hyphen range (``1.2 - 2.3.4``) or comparators
separated by spaces or commas. A comparator is ``<``, ``<=``, ``>``, ``>=``, ``=``, ``!=``, ``^``,
``~`` (``~>`` reads as ``~``) or nothing, before a version that may be partial or use ``x``,
``X`` or ``*`` wildcards (``1.x``, ``1.2.*``, ``*``).

Ranges are desugared the way node-semver does with ``includePrerelease``: an upper bound that
comes from a wildcard or ``^``/``~`` excludes the prereleases of that bound (``^1`` is
``>=1.0.0-0 <2.0.0-0``, so ``2.0.0-rc.1`` is outside). Whether prereleases are wanted at all is
the rule's ``prerelease`` switch, decided before the range is consulted.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from imagebot.errors import SelectionError

from .versions import Key, prerelease_key

_Compare = Callable[[Key, Key], bool]
_OPS: dict[str, _Compare] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "=": operator.eq,
    "!=": operator.ne,
}

_X = r"(?:0|[1-9]\d*|[xX*])"
_PARTIAL = (
    rf"[vV]?(?P<major>{_X})(?:\.(?P<minor>{_X})(?:\.(?P<patch>{_X})"
    r"(?:-(?P<pre>[0-9A-Za-z][0-9A-Za-z.-]*))?(?:\+[0-9A-Za-z.-]+)?)?)?"
)
_PARTIAL_RE = re.compile(_PARTIAL)
_COMPARATOR_RE = re.compile(rf"(?P<op>\^|~>?|>=|<=|>|<|=|!=)?\s*(?P<ver>{_PARTIAL})")
_HYPHEN_RE = re.compile(r"^\s*(?P<lo>\S+)\s+-\s+(?P<hi>\S+)\s*$")


def _lowest(major: int, minor: int, patch: int) -> Key:
    """The smallest key of a release line: below every prerelease of it (node's ``-0``)."""
    return (major, minor, patch, 0, ())


@dataclass(frozen=True)
class _Partial:
    major: int | None
    minor: int | None
    patch: int | None
    pre: str

    def key(self) -> Key:
        pre = prerelease_key(self.pre)
        return (self.major or 0, self.minor or 0, self.patch or 0, 0 if pre else 1, pre)


@dataclass(frozen=True)
class Comparator:
    op: str
    key: Key
    compare: _Compare = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compare", _OPS[self.op])


@dataclass(frozen=True)
class SemverRange:
    """A parsed range: any alternative whose comparators all hold."""

    text: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    def contains(self, key: Key) -> bool:
        """True when the version with precedence ``key`` satisfies the range."""
        for alternative in self.alternatives:
            for c in alternative:
                if not c.compare(key, c.key):
                    break
            else:
                return True
        return False

    def prerelease_cores(self) -> frozenset[tuple[int, int, int]]:
        """Releases whose prereleases a comparator spells out (``>=2.0.0-rc.1``: 2.0.0).

        node-semver lets such a range match prereleases of that release even when
        prereleases are otherwise off; so does selection.
        """
        return frozenset(
            (c.key[0], c.key[1], c.key[2])
            for alt in self.alternatives
            for c in alt
            if c.key[3] == 0 and c.key[4]
        )


def _number(text: str | None) -> int | None:
    if text is None or text in ("x", "X", "*"):
        return None
    return int(text)


def _read_partial(text: str, whole: str) -> _Partial:
    m = _PARTIAL_RE.fullmatch(text)
    if m is None:
        raise SelectionError(f"range {whole!r}: {text!r} is not a version", field="range")
    major, minor, patch = (_number(m.group(g)) for g in ("major", "minor", "patch"))
    # "1.x.3" means "1.x": a wildcard swallows everything after it.
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    return _Partial(major, minor, patch, m.group("pre") or "")


def _wildcard(p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:
        return ()
    if p.minor is None:
        return (
            Comparator(">=", _lowest(p.major, 0, 0)),
            Comparator("<", _lowest(p.major + 1, 0, 0)),
        )
    if p.patch is None:
        return (
            Comparator(">=", _lowest(p.major, p.minor, 0)),
            Comparator("<", _lowest(p.major, p.minor + 1, 0)),
        )
    return (Comparator("=", p.key()),)


def _lower(p: _Partial) -> Comparator | None:
    if p.major is None:
        return None
    if p.patch is None:
        return Comparator(">=", _lowest(p.major, p.minor or 0, 0))
    return Comparator(">=", p.key())


def _upper_inclusive(p: _Partial) -> Comparator | None:
    if p.major is None:
        return None
    if p.minor is None:
        return Comparator("<", _lowest(p.major + 1, 0, 0))
    if p.patch is None:
        return Comparator("<", _lowest(p.major, p.minor + 1, 0))
    return Comparator("<=", p.key())


def _caret(p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:
        return ()
    low = _lower(p)
    assert low is not None
    if p.major > 0 or p.minor is None:
        high = _lowest(p.major + 1, 0, 0)
    elif p.minor > 0 or p.patch is None:
        high = _lowest(0, p.minor + 1, 0)
    else:
        high = _lowest(0, 0, (p.patch or 0) + 1)
    return (low, Comparator("<", high))


def _tilde(p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:
        return ()
    low = _lower(p)
    assert low is not None
    if p.minor is None:
        return (low, Comparator("<", _lowest(p.major + 1, 0, 0)))
    return (low, Comparator("<", _lowest(p.major, p.minor + 1, 0)))


def _comparators(op: str, p: _Partial) -> tuple[Comparator, ...]:
    if op == "^":
        return _caret(p)
    if op in ("~", "~>"):
        return _tilde(p)
    if op in ("", "="):
        return _wildcard(p)
    if p.major is None:
        # ">=*" and "<=*" match everything; "<*" and ">*" nothing.
        return () if op in (">=", "<=") else (Comparator("<", _lowest(0, 0, 0)),)
    if op == "!=":
        return (Comparator("!=", p.key()),) if p.patch is not None else ()
    if op == ">=":
        low = _lower(p)
        return (low,) if low else ()
    if op == "<=":
        high = _upper_inclusive(p)
        return (high,) if high else ()
    if op == ">":
        if p.minor is None:
            return (Comparator(">=", _lowest(p.major + 1, 0, 0)),)
        if p.patch is None:
            return (Comparator(">=", _lowest(p.major, p.minor + 1, 0)),)
        return (Comparator(">", p.key()),)
    # op == "<"
    if p.patch is None:
        return (Comparator("<", _lowest(p.major, p.minor or 0, 0)),)
    return (Comparator("<", p.key()),)


def _alternative(text: str, whole: str) -> tuple[Comparator, ...]:
    hyphen = _HYPHEN_RE.match(text)
    if hyphen:
        lo = _lower(_read_partial(hyphen["lo"], whole))
        hi = _upper_inclusive(_read_partial(hyphen["hi"], whole))
        return tuple(c for c in (lo, hi) if c is not None)
    out: list[Comparator] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _COMPARATOR_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectionError(
                f"range {whole!r}: cannot read {text[pos:]!r} "
                "(expected a comparison such as '>=1.2', '^1', '~1.2.3', '1.x' or '*')",
                field="range",
            )
        out.extend(_comparators(m["op"] or "", _read_partial(m["ver"], whole)))
        pos = m.end()
        separator = re.compile(r"\s*,\s*|\s+").match(text, pos)
        if pos < len(text):
            if separator is None or separator.end() == pos:
                raise SelectionError(
                    f"range {whole!r}: expected a space or comma after {m.group()!r}",
                    field="range",
                )
            pos = separator.end()
    return tuple(out)


def parse_range(text: str) -> SemverRange:
    """Parse a range; SelectionError(field="range") names the part it cannot read."""
    if not text.strip():
        raise SelectionError("range is empty (use '*' for any version)", field="range")
    alternatives = tuple(_alternative(part, text) for part in text.split("||"))
    return SemverRange(text=text, alternatives=alternatives)
