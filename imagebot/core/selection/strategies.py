"""How each strategy reads a tag (or the value ``extract`` made of it) into an ordering key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .compiled import CompiledRule
from .semver_tags import SemverTag, parse_tag

#: A strategy's reading of a value: an ordering key, or the reason it cannot be read.
Reading = tuple[Any, SemverTag | None] | str

_NUMBER_CHARS = frozenset("0123456789.-+")


def read_semver(value: str, partial_allowed: bool) -> Reading:
    parsed = parse_tag(value)
    if parsed is None:
        return "not a semver version"
    if parsed.partial and not partial_allowed:
        return f"partial version {value!r} (set partial: true to read it as {parsed.version})"
    return parsed.key, parsed


def read_numeric(value: str) -> Reading:
    # Flux's numerical policy fails the whole image when one tag is not a number; here an
    # unreadable tag is skipped with its own reason and the rest still compete.
    if value.isdigit():
        return int(value), None
    if value and _NUMBER_CHARS.issuperset(value):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return "not a number"
        if number.is_finite():
            return number, None
    return "not a number"


def reader(compiled: CompiledRule) -> Callable[[str], Reading]:
    """The function turning a value into a key for ``compiled``'s strategy.

    newest-build orders by creation time, which is not in the value; its reader only checks
    the value is not empty and the caller supplies the time.
    """
    strategy = compiled.rule.strategy
    if strategy == "semver":
        partial = compiled.rule.partial
        return lambda value: read_semver(value, partial)
    if strategy == "numeric":
        return read_numeric
    if strategy == "calver":
        assert compiled.calver is not None
        read = compiled.calver.read
        fmt = compiled.calver.text

        def read_calver(value: str) -> Reading:
            key = read(value)
            return (key, None) if key is not None else f"does not follow calver {fmt}"

        return read_calver
    if strategy == "lexical":
        return lambda value: (value, None) if value else "extract gave an empty value"
    if strategy == "newest-build":
        return lambda value: (None, None)
    raise AssertionError(f"no reader for strategy {strategy}")


def tiebreak_version(name: str) -> tuple[int, Any]:
    """newest-build ties: a higher version wins, then any version over a non-version."""
    parsed = parse_tag(name)
    return (1, parsed.key) if parsed is not None else (0, ())


def describe_key(strategy: str, key: Any) -> str:
    if strategy == "newest-build" and isinstance(key, datetime):
        return key.isoformat()
    return str(key)
