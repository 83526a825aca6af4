"""Repository patterns: one policy entry for many repositories (``ghcr.io/acme/*``, ``**/redis``).

A pattern is a repository name in which ``*`` stands for any text within one path component
and a ``**`` component for any number of components (none included). It is normalised like
a reference (``acme/*`` is ``docker.io/acme/*``, ``redis*`` is ``docker.io/library/redis*``),
except that a leading ``**`` stands for every registry. Patterns are matched against
normalised repository names. When several patterns match, the one with the most fixed
(non-wildcard) characters is the most specific; see docs/policies.md for the precedence.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from imagebot.core.reference import parse, split_domain
from imagebot.errors import InvalidReference

ANY = "**"


def is_pattern(text: str) -> bool:
    return "*" in text


@dataclass(frozen=True)
class RepositoryPattern:
    """A validated, normalised pattern."""

    text: str
    """Normalised, e.g. ``docker.io/library/redis*``, ``**/redis``."""
    components: tuple[str, ...]
    regex: re.Pattern[str]

    @property
    def specificity(self) -> int:
        """Fixed characters: the more, the narrower the pattern."""
        return sum(len(c.replace("*", "")) for c in self.components)

    def matches(self, repository: str) -> bool:
        """Whether the normalised ``repository`` is one this pattern stands for."""
        return self.regex.fullmatch("/" + repository) is not None

    def overlaps(self, other: RepositoryPattern) -> bool:
        """Whether some repository matches both patterns."""
        return _sequences_meet(self.components, other.components, ANY, _components_meet)


@functools.lru_cache(maxsize=1024)
def compile_pattern(text: str) -> RepositoryPattern:
    """Validate and normalise ``text``; raise InvalidReference naming what is wrong."""
    raw = text.strip()
    if any(ANY in c and c != ANY for c in raw.split("/")):
        raise InvalidReference(f"{text!r}: '**' must be a whole path component, as in '**/redis'")
    if "@" in raw or ":" in raw.rsplit("/", 1)[-1]:
        raise InvalidReference(f"{text!r}: a pattern names repositories, not tags or digests")
    # Validate the shape by parsing it with every wildcard read as a plain letter.
    try:
        parse(raw.replace(ANY, "x").replace("*", "x"))
    except InvalidReference as exc:
        raise InvalidReference(f"{text!r} is not a valid repository pattern: {exc}") from None
    first = raw.split("/", 1)[0]
    normalised = raw if first == ANY else "/".join(split_domain(raw))
    components = tuple(normalised.split("/"))
    pieces = []
    for c in components:
        if c == ANY:
            pieces.append("(?:/[^/]+)*")
        else:
            pieces.append("/" + "[^/]*".join(re.escape(part) for part in c.split("*")))
    return RepositoryPattern(normalised, components, re.compile("".join(pieces)))


def _components_meet(a: str, b: str) -> bool:
    """Whether some path component matches both component patterns (``*`` wildcards)."""
    return _sequences_meet(tuple(a), tuple(b), "*", operator.eq)


def _sequences_meet(
    a: tuple[str, ...], b: tuple[str, ...], star: str, meet: Callable[[str, str], bool]
) -> bool:
    """Whether one sequence matches both patterns, where ``star`` matches any run of items.

    The classic two-pattern walk: a star either matches nothing more, or swallows the other
    pattern's next item (a plain item, or a star, whose runs it then covers).
    """

    @functools.cache
    def walk(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == star and (walk(i + 1, j) or (j < len(b) and walk(i, j + 1))):
            return True
        if j < len(b) and b[j] == star and (walk(i, j + 1) or (i < len(a) and walk(i + 1, j))):
            return True
        if i < len(a) and j < len(b) and a[i] != star and b[j] != star:
            return meet(a[i], b[j]) and walk(i + 1, j + 1)
        return False

    return walk(0, 0)
