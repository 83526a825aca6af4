"""Decide from raw text, without parsing, whether a file may reference a repository.

A reference to ``ghcr.io/acme/backend`` contains its path ``acme/backend`` literally,
whatever form it takes: the full name, a Helm block or Argo CD parameters that split
registry and repository, a kustomize ``newName``; ``docker.io/library/nginx`` is found as
``nginx``. Searching for that text may let through a file that does not reference the
repository (it is then parsed for nothing), but never turns one away — except a chart that
puts part of the path in its registry field (``registry: ghcr.io/acme``), see docs/rewrite.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

from imagebot.core.reference import OFFICIAL_REPO_PREFIX, parse
from imagebot.core.rewrite import markers
from imagebot.errors import InvalidReference


def needle(repository: str) -> str:
    """The text every reference to ``repository`` (normalised or short) contains."""
    try:
        ref = parse(repository)
    except InvalidReference:
        return repository
    return ref.path.removeprefix(OFFICIAL_REPO_PREFIX)


#: Up to this many needles, one ``str.find`` each (a memchr-speed scan) beats a regex
#: alternation, which Python's re engine tries at every position.
_FIND_LIMIT = 48


class Matcher:
    """Searches text for any of a set of literal needles."""

    def __init__(self, needles: frozenset[str]) -> None:
        self.needles = tuple(sorted(needles))
        ordered = sorted(needles, key=lambda n: (-len(n), n))
        self.pattern = re.compile("|".join(re.escape(n) for n in ordered) or r"(?!)")

    def search(self, text: str, start: int = 0, end: int | None = None) -> bool:
        stop = len(text) if end is None else end
        if len(self.needles) <= _FIND_LIMIT:
            return any(text.find(n, start, stop) >= 0 for n in self.needles)
        return self.pattern.search(text, start, stop) is not None


@functools.lru_cache(maxsize=32)
def _compile(needles: frozenset[str]) -> Matcher:
    return Matcher(needles)


@functools.lru_cache(maxsize=32)
def _matcher_of(repositories: frozenset[str]) -> Matcher:
    return _compile(frozenset(needle(r) for r in repositories))


def matcher(repositories: Collection[str]) -> Matcher:
    """One search for the needles of all ``repositories``."""
    return _matcher_of(frozenset(repositories))


def mentions(text: str, repositories: Collection[str]) -> bool:
    """Could ``text`` reference one of ``repositories`` or hold an imagebot/Flux marker?"""
    if markers.has_markers(text):
        return True
    return bool(repositories) and matcher(repositories).search(text)
