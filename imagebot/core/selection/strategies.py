"""How numeric, lexical, calver and newest-build read a tag (or its extracted value) into a key.

semver has its own reader (``semver_tags``), because its gates need more than a key.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .compiled import CompiledRule
from .semver_tags import parse_tag


class Unreadable(str):
    """A reader's answer for a value it cannot order: the reason, distinguishable from a key.

    Lexical keys are strings too, so a reason is marked by its type rather than by being one.
    """

    __slots__ = ()


NOT_A_NUMBER = Unreadable("not a number")
EMPTY_VALUE = Unreadable("extract gave an empty value")
_NUMBER_CHARS = frozenset("0123456789.-+")

#: value -> ordering key, or Unreadable.
Reader = Callable[[str], Any]


def read_numeric(value: str) -> Any:
    # Flux's numerical policy fails the whole image when one tag is not a number; here an
    # unreadable tag is skipped with its own reason and the rest still compete.
    if value.isdigit():
        return int(value)
    if value and _NUMBER_CHARS.issuperset(value):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return NOT_A_NUMBER
        if number.is_finite():
            return number
    return NOT_A_NUMBER


def read_lexical(value: str) -> Any:
    return value if value else EMPTY_VALUE


def read_nothing(value: str) -> Any:
    """newest-build orders by creation time, which is not in the value; the caller adds it."""
    return 0


def reader(compiled: CompiledRule) -> Reader:
    """The reader for ``compiled``'s strategy (semver excepted)."""
    strategy = compiled.rule.strategy
    if strategy == "numeric":
        return read_numeric
    if strategy == "lexical":
        return read_lexical
    if strategy == "calver":
        assert compiled.calver is not None
        read = compiled.calver.read
        off_format = Unreadable(compiled.calver.off_format)

        def read_calver(value: str) -> Any:
            key = read(value)
            return key if key is not None else off_format

        return read_calver
    if strategy == "newest-build":
        return read_nothing
    raise AssertionError(f"no generic reader for strategy {strategy}")


def tiebreak_version(name: str) -> tuple[int, Any]:
    """newest-build ties: a higher version wins, then any version over a non-version."""
    parsed = parse_tag(name)
    return (1, parsed.key) if parsed is not None else (0, ())
