"""Decide from raw text, without parsing, whether a file may reference a repository.

A reference to ``ghcr.io/acme/backend`` contains the last component of its path,
``backend``, literally and as a whole name, whatever form it takes: the full name, a Helm
block or Argo CD parameters that split registry and repository anywhere (``registry:
ghcr.io/acme`` + ``repository: backend`` included), a kustomize ``newName``;
``docker.io/library/nginx`` is found as ``nginx``. A whole name is delimited by anything
that cannot be part of one (``/``, ``:``, ``@``, quotes, spaces). Searching for that text
may let through a file that does not reference the repository (it is then parsed for
nothing), but never turns one away.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator

import ahocorasick

from imagebot.core.reference import parse
from imagebot.core.rewrite import kinds, markers
from imagebot.errors import InvalidReference


def needle(repository: str) -> str:
    """The text every reference to ``repository`` (normalised or short) contains."""
    try:
        ref = parse(repository)
    except InvalidReference:
        return repository
    return ref.path.rsplit("/", 1)[-1]


class Matcher:
    """Searches text for any of a set of literal needles in one pass.

    An Aho–Corasick automaton (pyahocorasick, in C) scans the text once whatever the number
    of needles; Python's re tries an alternation at every position and took a quarter of the
    benchmark's run time with 100 watched repositories.
    """

    def __init__(self, needles: frozenset[str]) -> None:
        self.needles = tuple(sorted(needles))
        self._automaton: ahocorasick.Automaton | None = None
        if self.needles:
            automaton = ahocorasick.Automaton()
            for word in self.needles:
                automaton.add_word(word, len(word))
            automaton.make_automaton()
            self._automaton = automaton
        self._last: tuple[str, int, int, list[int]] | None = None

    def search(self, text: str, start: int = 0, end: int | None = None) -> bool:
        stop = len(text) if end is None else end
        return bool(self.positions(text, start, stop))

    def positions(self, text: str, start: int, stop: int) -> list[int]:
        """Sorted offsets of whole occurrences of the needles in ``text[start:stop]``.

        The last answer is kept: :func:`mentions` and then ``locate`` ask about the same text,
        and one scan serves both.
        """
        last = self._last
        if last is not None and last[0] is text and last[1] == start and last[2] == stop:
            return last[3]
        found = sorted(set(self._whole_matches(text, start, stop)))
        self._last = (text, start, stop, found)
        return found

    def _whole_matches(self, text: str, start: int, stop: int) -> Iterator[int]:
        if self._automaton is None or start >= stop:
            return
        for last, length in self._automaton.iter(text, start, stop):
            at = last + 1 - length
            if _whole(text, at, last + 1) and _may_be_a_name(text, at, last + 1):
                yield at


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _whole(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is a whole repository path, not part of a longer name
    (``nginx`` in ``ingress-nginx`` or ``nginx-exporter``); ``/``, ``:``, ``@``, quotes
    and spaces delimit it."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return before not in _NAME_CHARS and after not in _NAME_CHARS


# Indentation and sequence entries ("- ") at the start of a line.
_INDENT = re.compile(r"[ \t]*(?:-[ \t]+)*")
# A plain ``key:`` and the blanks after it, up to where its plain value begins.
_KEY = re.compile(r"([A-Za-z0-9_][\w./-]*)[ \t]*:[ \t]+")
# Characters that open a quoted or block scalar, which could hold the next line's text.
_SCALAR_OPENERS = frozenset("\"'|>")


def _may_be_a_name(text: str, start: int, end: int) -> bool:
    """False when the hit ``text[start:end]`` cannot be (part of) an image name.

    Two shapes are ruled out, each taking up a whole line's head: the hit as a mapping key
    (``registry: docker.io`` for the ``registry`` image) and the hit as the plain value of a
    key that never holds an image name (``app: nginx``, ``namespace: argocd``). With 100
    watched repositories, a third of the text parsed before was in such documents.

    Why it is exact: every located repository comes from a scalar whose value up to and
    including the name is a valid reference after leading blanks, so holds no ``#``, no
    inner blank and no ``": "``. A plain scalar cannot contain ``": "``, so on a line that
    really starts ``key: nginx`` the hit begins the value of ``key``, and ``nginx:``
    followed by a blank is a key. If instead the line lies inside a quoted or block scalar
    that began earlier, that scalar's value has ``key: `` before the hit, or (for a
    key-shaped hit) a fold, an escaped line break or only blanks before it; the last two
    need a backslash ending, or the scalar opening on, the previous non-blank line, which
    is therefore checked for ``"``, ``'``, ``|``, ``>`` and a final backslash. Markers are
    unaffected: documents holding one are always parsed whole.
    """
    line_start = text.rfind("\n", 0, start) + 1
    indent = _INDENT.match(text, line_start)
    assert indent is not None  # the pattern matches the empty string
    if indent.end() != start:
        key = _KEY.match(text, indent.end(), start)
        return key is None or key.end() != start or kinds.may_hold_name(key.group(1))
    if not text.startswith(":", end):
        return True
    if end + 1 < len(text) and text[end + 1] not in " \t\r\n":
        return True
    return _scalar_may_continue(text, line_start)


def _scalar_may_continue(text: str, line_start: int) -> bool:
    """Whether the last non-blank line before ``line_start`` may open or continue a quoted or
    block scalar onto the next line."""
    end = line_start
    while end > 0:
        begin = text.rfind("\n", 0, end - 1) + 1
        line = text[begin : end - 1].rstrip(" \t\r")
        if line:
            return line.endswith("\\") or not _SCALAR_OPENERS.isdisjoint(line)
        end = begin
    return False


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
