"""User regexes (include, exclude) and the ``extract`` template over include's named groups.

A pattern like ``(\\w+-?)*$`` could backtrack for hours on a 128-character tag, so patterns run
on the ``regex`` package with a time limit per match; docs/policies.md says why this guard and
not RE2. The limit only fires on a pattern that would never finish: its image fails, naming
the pattern and the tag, and the other images go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import regex

from imagebot.errors import SelectionError

#: Seconds one match may take. Sound patterns need microseconds.
MATCH_TIMEOUT = 0.25

_TEMPLATE_REF = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))")


@dataclass(frozen=True)
class UserPattern:
    """A compiled user regex that cannot run away."""

    text: str
    field: str
    compiled: regex.Pattern[str]

    def search(self, tag: str) -> regex.Match[str] | None:
        try:
            return self.compiled.search(tag, timeout=MATCH_TIMEOUT)
        except TimeoutError as exc:
            raise SelectionError(
                f"{self.field} pattern '{self.text}' took longer than {MATCH_TIMEOUT}s on tag "
                f"{tag!r}: it backtracks catastrophically (nested repetition such as '(a+)+'); "
                "rewrite it",
                field=self.field,
            ) from exc


def compile_pattern(text: str, field: str) -> UserPattern:
    """Compile a user regex; SelectionError(field=...) says what is wrong with it.

    ``regex`` reads both Python's ``(?P<name>...)`` and Go's ``(?<name>...)`` (Flux and
    Argo CD Image Updater policies use the latter)."""
    try:
        return UserPattern(text=text, field=field, compiled=regex.compile(text))
    except regex.error as exc:
        raise SelectionError(
            f"{field} pattern '{text}' is not a valid regex: {exc}", field=field
        ) from None


def compile_template(
    template: str, include: UserPattern | None
) -> Callable[[regex.Match[str]], str]:
    """Turn ``extract`` into a function of include's match; checks every name it uses exists."""
    if include is None:
        raise SelectionError(
            "extract needs an include pattern whose named groups it can use", field="extract"
        )
    names = [m["braced"] or m["bare"] for m in _TEMPLATE_REF.finditer(template)]
    if not names:
        raise SelectionError(
            f"extract {template!r} names no group (write e.g. '$version' or '${{ts}}')",
            field="extract",
        )
    groups = include.compiled.groupindex
    for name in names:
        if name not in groups and not (name.isdigit() and int(name) <= include.compiled.groups):
            raise SelectionError(
                f"extract {template!r} uses ${name}, which include '{include.text}' does not "
                f"define (groups: {', '.join(sorted(groups)) or 'none'})",
                field="extract",
            )

    def expand(match: regex.Match[str]) -> str:
        def ref(m: re.Match[str]) -> str:
            name = m["braced"] or m["bare"]
            return match.group(int(name) if name.isdigit() else name) or ""

        return _TEMPLATE_REF.sub(ref, template)

    return expand
