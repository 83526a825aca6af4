"""User regexes (include, exclude) and the ``extract`` template over include's named groups.

Policy authors write these patterns and registries supply the text, so a pattern like
``(\\w+-?)*$`` could backtrack for hours on a 128-character tag and stall every image in the
cycle. Patterns run on the ``regex`` package with a per-match timeout: it speaks the syntax
users copy from Flux and Argo CD (``(?P<ts>...)`` and Go's ``(?<ts>...)``) and stops a runaway
match, where RE2 bindings would refuse lookarounds and cost ten times more per match, and a
static "dangerous pattern" check would reject sound patterns such as ``^(\\d+\\.)+\\d+$``. A
sound pattern needs microseconds on a tag (at most 128 characters by the OCI distribution
spec), so the limit only ever fires on a pattern that would never finish; the policy then fails
with a message naming the pattern and the tag, rather than picking from a partial list.

That guard costs about 3 µs a tag, three times the budget for choosing from 100,000 tags. A
pattern ``regex_safety`` proves harmless also gets a line form: the standard library's ``re``
run once over the newline-joined tags (``UserPattern.lines``), with the same result per tag.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import starmap
from operator import itemgetter
from typing import Any

import regex

from imagebot.errors import SelectionError

from .regex_safety import anchored_at_start, line_safe, sre_constants, sre_parse

#: Seconds one match may take. Sound patterns need microseconds.
MATCH_TIMEOUT = 0.25

_TEMPLATE_REF = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))")


@dataclass(frozen=True)
class UserPattern:
    """A compiled user regex that cannot run away."""

    text: str
    field: str
    compiled: regex.Pattern[str]
    #: The line form, when the pattern is proven harmless (``regex_safety``): over
    #: newline-joined tags, it matches each whole tag that the pattern matches.
    lines: re.Pattern[str] | None = None
    #: The same with groups: 1 the tag, 2 the pattern's match, then the pattern's own groups.
    rows: re.Pattern[str] | None = None
    #: For a pattern whose one group always takes part with a non-empty value: a form that
    #: matches every line and gives that value, or "" where the pattern does not match.
    every_line: re.Pattern[str] | None = None

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

    def line_flags(self, tags: JoinedTags) -> bytes:
        """One byte per tag, 1 where the pattern matches it (see ``line_flags``)."""
        assert self.lines is not None
        return line_flags(self.lines, tags)


_MARK = "\x01"
_MARK_LINE = b"\x01\n"
_NOT_MARK = bytes(c for c in range(128) if c not in (1, 10))


def line_flags(lines: re.Pattern[str], tags: JoinedTags) -> bytes:
    """One byte per tag, 1 where ``lines`` (a multiline pattern that matches whole lines)
    matches it, from passes that all run in C: the pattern turns each matching line into a
    marker, then every other character goes. ``itertools.compress`` takes the result."""
    marked = lines.sub(_MARK, tags.text).encode("ascii") + b"\n"
    flags = marked.translate(None, _NOT_MARK).replace(_MARK_LINE, b"\x01")
    return flags.replace(b"\n", b"\x00")


@dataclass(frozen=True, slots=True)
class JoinedTags:
    """Tags joined by newlines, for line forms."""

    text: str

    @classmethod
    def of(cls, tags: Sequence[str]) -> JoinedTags | None:
        """None when the joined text would not read back as these tags, one per line: a tag
        that is empty, not ASCII (the proofs assume it) or holds a newline or the marker."""
        if not tags:
            return None
        text = "\n".join(tags)
        if (
            not text.isascii()
            or text.count("\n") != len(tags) - 1
            or "\n\n" in text
            or text[0] == "\n"
            or text[-1] == "\n"
            or _MARK in text
        ):
            return None
        return cls(text)


def compile_pattern(text: str, field: str) -> UserPattern:
    """Compile a user regex; SelectionError(field=...) says what is wrong with it."""
    try:
        compiled = regex.compile(text)
    except regex.error as exc:
        raise SelectionError(
            f"{field} pattern '{text}' is not a valid regex: {exc}", field=field
        ) from None
    std = standard_syntax(text)
    if not line_safe(std):
        return UserPattern(text=text, field=field, compiled=compiled)
    prefix = "" if anchored_at_start(std) else ".*?"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "possible nested set": regex reads it otherwise
            lines = re.compile(f"^{prefix}(?:{std}).*$", re.MULTILINE)
            rows = re.compile(f"^({prefix}((?:{std})).*)$", re.MULTILINE)
            every = (
                re.compile(f"^(?:{prefix}(?:{std}).*|.*)$", re.MULTILINE)
                if _only_group_never_empty(std)
                else None
            )
    except (re.error, FutureWarning, DeprecationWarning):
        return UserPattern(text=text, field=field, compiled=compiled)
    shifted = {name: number + 2 for name, number in compiled.groupindex.items()}
    if dict(rows.groupindex) != shifted or rows.groups != compiled.groups + 2:
        return UserPattern(text=text, field=field, compiled=compiled)
    return UserPattern(
        text=text, field=field, compiled=compiled, lines=lines, rows=rows, every_line=every
    )


def standard_syntax(text: str) -> str:
    """``text`` with Go's and .NET's named groups ``(?<name>...)``, which Flux and Argo CD
    policies use and the ``regex`` package reads, spelt ``(?P<name>...)`` for ``re`` (Python
    3.11's ``re`` reads only the latter). Escapes and character classes are left alone; the
    caller checks that both spellings define the same groups."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or (out[-1] == "[" or out[-1] == "[^")
        elif ch == "[":
            in_class = True
            if text.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
        elif text.startswith("(?<", i) and text[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _only_group_never_empty(text: str) -> bool:
    """Whether the pattern has one group, outside any repeat or alternative (so it takes part
    in every match) and unable to match the empty string."""
    parsed = sre_parse.parse(text)
    if parsed.state.groups != 2:  # group 0 counts
        return False
    items = list(parsed)
    while items:
        op, av = items.pop()
        if op is sre_constants.SUBPATTERN:
            group, _add, _del, body = av
            if group == 1:
                return bool(body.getwidth()[0] > 0)
            items.extend(body)
    return False


def template_names(template: str) -> list[str]:
    """The group names a template refers to (``$version``, ``${ts}``)."""
    return [m["braced"] or m["bare"] for m in _TEMPLATE_REF.finditer(template)]


def compile_template(
    template: str, include: UserPattern | None
) -> Callable[[regex.Match[str]], str]:
    """Turn ``extract`` into a function of include's match; checks every name it uses exists."""
    if include is None:
        raise SelectionError(
            "extract needs an include pattern whose named groups it can use", field="extract"
        )
    names = template_names(template)
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
            value = match.group(int(name) if name.isdigit() else name)
            return value or ""

        return _TEMPLATE_REF.sub(ref, template)

    return expand


def _group_numbers(template: str, include: UserPattern) -> list[int]:
    """The numbers of the groups ``template`` refers to, in order (0: the whole match)."""
    groupindex = include.compiled.groupindex
    return [int(n) if n.isdigit() else groupindex[n] for n in template_names(template)]


def extracts_the_only_group(template: str, include: UserPattern) -> bool:
    """Whether ``template`` is just a reference to include's one and only group."""
    whole = _TEMPLATE_REF.fullmatch(template) is not None
    return whole and include.compiled.groups == 1 and _group_numbers(template, include) == [1]


def compile_line_extract(template: str, include: UserPattern) -> Callable[[JoinedTags], list[str]]:
    """``extract`` over joined tags: the value of each tag include matches, in order.

    Without ``$0`` the template needs only the pattern's own groups, which ``lines`` gives
    (fewer and smaller tuples than ``rows``: half the time at 100,000 tags) when there are
    at least two of them."""
    assert include.lines is not None and include.rows is not None
    if extracts_the_only_group(template, include):  # findall gives the group's value
        return partial(_findall, include.lines)
    numbers = _group_numbers(template, include)
    # lines' findall gives tuples only with two groups or more (one group: bare strings).
    lean = 0 not in numbers and include.compiled.groups > 1
    source = include.lines if lean else include.rows
    index = [n - 1 if lean else n + 1 for n in numbers]
    if _TEMPLATE_REF.fullmatch(template):
        return partial(_map_rows, itemgetter(index[0]), source)
    # A format string whose fields are positions in a row: itertools.starmap then fills it
    # for every row in C, where a Python function per tag cost a microsecond and a half.
    fields: list[str] = []
    at = 0
    for m, i in zip(_TEMPLATE_REF.finditer(template), index, strict=True):
        fields.append(template[at : m.start()].replace("{", "{{").replace("}", "}}"))
        fields.append(f"{{{i}}}")
        at = m.end()
    fields.append(template[at:].replace("{", "{{").replace("}", "}}"))
    return partial(_format_rows, "".join(fields), source)


def _format_rows(form: str, source: re.Pattern[str], tags: JoinedTags) -> list[str]:
    return list(starmap(form.format, source.findall(tags.text)))


def _findall(lines: re.Pattern[str], tags: JoinedTags) -> list[str]:
    return lines.findall(tags.text)


def _map_rows(value: Callable[[Any], str], source: re.Pattern[str], tags: JoinedTags) -> list[str]:
    return list(map(value, source.findall(tags.text)))
