"""Decide from raw text, without parsing, whether a file may reference a repository.

A reference to ``ghcr.io/acme/backend`` always contains its last path component
``backend`` literally, whatever form it takes: the full name, a short Docker Hub name
(``nginx``), or a Helm block that splits registry and repository. Searching for that one
word may let through a file that does not reference the repository (it is then parsed for
nothing), but never turns one away.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

from imagebot.core.rewrite import markers


def needle(repository: str) -> str:
    """The word every reference to ``repository`` (normalised or short) contains."""
    name = repository.partition("@")[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0] if ":" in last else last


@functools.lru_cache(maxsize=32)
def _compile(needles: frozenset[str]) -> re.Pattern[str]:
    # Longest first so that a regex alternation prefers specific words; all are literals.
    ordered = sorted(needles, key=lambda n: (-len(n), n))
    return re.compile("|".join(re.escape(n) for n in ordered) or r"(?!)")


def matcher(repositories: Collection[str]) -> re.Pattern[str]:
    """One compiled search for the words of all ``repositories``."""
    return _compile(frozenset(needle(r) for r in repositories))


def mentions(text: str, repositories: Collection[str]) -> bool:
    """Could ``text`` reference one of ``repositories`` or hold an imagebot/Flux marker?"""
    if markers.has_markers(text):
        return True
    return bool(repositories) and matcher(repositories).search(text) is not None
