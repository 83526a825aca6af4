"""SemVer ranges as npm's node-semver writes them, plus the commas Flux users bring along:
alternatives joined by ``||``, each a hyphen range (``1.2 - 2.3.4``) or comparators (``<``,
``<=``, ``>``, ``>=``, ``=``, ``!=``, ``^``, ``~``/``~>``, or none) before versions that may be
partial or use ``x``/``*``. Desugared as node-semver does with ``includePrerelease``: an upper
bound from a wildcard, ``^`` or ``~`` excludes that bound's prereleases (``^1`` is
``>=1.0.0-0 <2.0.0-0``); whether prereleases are wanted at all is the ``prerelease`` gate's.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from imagebot.errors import SelectionError

from .versions import Key, prerelease_key

_Compare = Callable[[Key, Key], bool]

_X = r"(?:\d+|[xX*])"
_PRE = r"[0-9A-Za-z][0-9A-Za-z.-]*"
_PARTIAL = (  # a prerelease follows the patch, or an x as Masterminds allows (^1.x-0)
    rf"[vV]?(?P<major>{_X})(?:\.(?P<minor>{_X})(?:\.(?P<patch>{_X})(?:-(?P<pre>{_PRE}))?"
    rf"(?:\+[0-9A-Za-z.-]+)?|(?<=[xX*])-(?P<xpre>{_PRE}))?)?"
)
_PARTIAL_RE = re.compile(_PARTIAL)
_COMPARATOR_RE = re.compile(rf"(?P<op>\^|~>?|>=|<=|>|<|=|!=)?\s*(?P<ver>{_PARTIAL})")
_HYPHEN_RE = re.compile(r"^\s*(?P<lo>\S+)\s+-\s+(?P<hi>\S+)\s*$")


def _lowest(major: int, minor: int, patch: int) -> Key:
    """The smallest key of a release line: below every prerelease of it (node's ``-0``)."""
    return (major, minor, patch, 0, ())


#: A comparison and the key it compares with: ``(operator.ge, key)`` is ``>=key``.
Comparator = tuple[_Compare, Key]


@dataclass(frozen=True)
class SemverRange:
    """A parsed range: any alternative whose comparators all hold."""

    text: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    def contains(self, key: Key) -> bool:
        """True when the version with precedence ``key`` satisfies the range."""
        for alternative in self.alternatives:
            for compare, bound in alternative:
                if not compare(key, bound):
                    break
            else:
                return True
        return False

    def prerelease_cores(self) -> frozenset[tuple[int, int, int]]:
        """Releases whose prereleases a comparator spells out (``>=2.0.0-rc.1``: 2.0.0): npm
        lets the range match their prereleases even when prereleases are otherwise off."""
        return frozenset(
            (k[0], k[1], k[2]) for alt in self.alternatives for _, k in alt if k[3] == 0 and k[4]
        )


class _Partial(NamedTuple):
    """A version in a range; None for a part left out or written ``x``."""

    major: int | None
    minor: int | None
    patch: int | None
    pre: str

    def key(self) -> Key:
        pre = prerelease_key(self.pre)
        return (self.major or 0, self.minor or 0, self.patch or 0, 0 if pre else 1, pre)

    def low(self) -> Key:
        """The lowest version it stands for (``1.2`` -> ``1.2.0-0``, ``1.x-rc`` -> ``1.0.0-rc``)."""
        assert self.major is not None
        if self.patch is not None or self.pre:
            return self.key()
        return _lowest(self.major, self.minor or 0, 0)

    def above(self) -> Key:
        """For a partial version, the lowest version above all it stands for (``1.2``:
        ``1.3.0-0``)."""
        assert self.major is not None
        if self.minor is None:
            return _lowest(self.major + 1, 0, 0)
        return _lowest(self.major, self.minor + 1, 0)


def _read_partial(text: str, whole: str) -> _Partial:
    m = _PARTIAL_RE.fullmatch(text)
    if m is None:
        raise SelectionError(f"range {whole!r}: {text!r} is not a version", field="range")
    major, minor, patch = (
        None if m[g] in (None, "x", "X", "*") else int(m[g]) for g in ("major", "minor", "patch")
    )
    # "1.x.3" means "1.x": a wildcard swallows everything after it.
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    return _Partial(major, minor, patch, m["pre"] or m["xpre"] or "")


def _comparators(op: str, p: _Partial) -> tuple[Comparator, ...]:
    """``op p`` as comparisons of full keys, the way node-semver desugars it."""
    if p.major is None:  # "*", ">=*", "^*"… match everything; "<*", ">*", "!=*" nothing
        return ((operator.lt, _lowest(0, 0, 0)),) if op in ("<", ">", "!=") else ()
    full = p.patch is not None
    if op == "^":
        if p.major > 0 or p.minor is None:
            high = _lowest(p.major + 1, 0, 0)
        elif p.minor > 0 or p.patch is None:
            high = _lowest(0, p.minor + 1, 0)
        else:
            high = _lowest(0, 0, (p.patch or 0) + 1)
        return ((operator.ge, p.low()), (operator.lt, high))
    if op in ("~", "~>"):
        return ((operator.ge, p.low()), (operator.lt, p._replace(patch=None).above()))
    if op in ("", "="):
        if full:
            return ((operator.eq, p.key()),)
        return ((operator.ge, p.low()), (operator.lt, p.above()))
    if op == "!=":  # "!=1.2" is none of 1.2.x (Masterminds): compare as many parts as given
        n = 5 if full else 1 if p.minor is None else 2
        return ((lambda key, bound: key[:n] != bound[:n], p.key()),)
    if op == ">=":
        return ((operator.ge, p.low()),)
    if op == "<=":
        return ((operator.le, p.key()),) if full else ((operator.lt, p.above()),)
    if op == ">":
        return ((operator.gt, p.key()),) if full else ((operator.ge, p.above()),)
    return ((operator.lt, p.low()),)  # "<"


def _alternative(text: str, whole: str) -> tuple[Comparator, ...]:
    hyphen = _HYPHEN_RE.match(text)
    if hyphen:
        low = _comparators(">=", _read_partial(hyphen["lo"], whole))
        return low + _comparators("<=", _read_partial(hyphen["hi"], whole))
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
