"""Checking a rule once and compiling its ranges, patterns and formats for repeated use."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import regex

from imagebot.errors import SelectionError

from .calver import CalverFormat, compile_calver
from .patterns import (
    JoinedTags,
    UserPattern,
    compile_line_extract,
    compile_pattern,
    compile_template,
    extracts_the_only_group,
)
from .rule import STRATEGIES, SelectionRule
from .semver_range import SemverRange, parse_range
from .semver_shapes import layout_of
from .semver_tags import clear_cache as clear_parse_cache
from .tag_kinds import clear_memo as clear_kind_memo


@dataclass(frozen=True)
class CompiledRule:
    """A rule whose strings have been parsed; built once per distinct rule."""

    rule: SelectionRule
    range: SemverRange | None
    include: UserPattern | None
    exclude: tuple[UserPattern, ...]
    extract: Callable[[regex.Match[str]], str] | None
    #: include and every exclude have line forms (``patterns``): filter the joined list.
    lines_only: bool
    #: extract over joined tags (``patterns.compile_line_extract``), when ``lines_only``.
    extract_lines: Callable[[JoinedTags], list[str]] | None
    #: include's ``every_line`` form when extract is exactly its one group: one pass gives
    #: both which tags match and their values.
    extract_every_line: re.Pattern[str] | None
    calver: CalverFormat | None
    ignore_tags: frozenset[str]
    ignore_ranges: tuple[SemverRange, ...]
    ignore_globs: tuple[re.Pattern[str], ...]
    #: tag -> the value include (and extract) make of it, or the include/exclude rejection.
    #: A pure function of the tag, remembered because every cycle filters the same tag list
    #: and guarded user patterns cost a few microseconds a tag. Bounded like the parse cache.
    filter_memo: dict[str, str] = field(default_factory=dict, compare=False)
    #: value -> what the strategy's reader made of it (numeric, lexical, calver).
    read_memo: dict[str, Any] = field(default_factory=dict, compare=False)


def _choice(value: object, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise SelectionError(f"{field} {value!r} is not one of {', '.join(allowed)}", field=field)


def compile_rule(rule: SelectionRule) -> CompiledRule:
    """Check and compile ``rule``, once per distinct rule; SelectionError names a bad field."""
    try:
        return _compile(rule)
    except TypeError:  # a caller built the rule with a list where a tuple belongs
        return _compile(
            dataclasses.replace(rule, exclude=tuple(rule.exclude), ignore=tuple(rule.ignore))
        )


@lru_cache(maxsize=1024)
def _compile(rule: SelectionRule) -> CompiledRule:
    """Check every field of ``rule``; SelectionError(field=...) names the first bad one."""
    _choice(rule.strategy, STRATEGIES, "strategy")
    _choice(rule.order, ("asc", "desc"), "order")
    _choice(rule.variant, ("match", "any"), "variant")
    _choice(rule.allow, ("major", "minor", "patch"), "allow")
    semver = rule.strategy == "semver"
    if rule.range is not None and not semver:
        raise SelectionError(
            f"range applies to strategy semver, not {rule.strategy}", field="range"
        )
    if rule.allow != "major" and not semver:
        raise SelectionError(
            f"allow: {rule.allow} applies to strategy semver, not {rule.strategy}", field="allow"
        )
    if rule.strategy == "calver" and not rule.calver:
        raise SelectionError(
            "strategy calver needs a calver format, e.g. 'YYYY.MM.DD'", field="calver"
        )
    if rule.calver and rule.strategy != "calver":
        raise SelectionError(
            f"calver format applies to strategy calver, not {rule.strategy}", field="calver"
        )
    if rule.min_age is not None and rule.min_age < timedelta(0):
        raise SelectionError(f"min_age {rule.min_age} is negative", field="min_age")
    if rule.follow is not None and rule.strategy != "digest":
        raise SelectionError(
            f"follow applies to strategy digest, not {rule.strategy}", field="follow"
        )

    include = compile_pattern(rule.include, "include") if rule.include is not None else None
    exclude = tuple(compile_pattern(p, "exclude") for p in rule.exclude)
    extract = compile_template(rule.extract, include) if rule.extract is not None else None
    patterns = ([include] if include is not None else []) + list(exclude)
    lines_only = all(p.lines is not None for p in patterns)
    extract_lines = (
        compile_line_extract(rule.extract, include)
        if lines_only and include is not None and rule.extract is not None
        else None
    )

    ignore_tags = frozenset(rule.ignore)
    ignore_ranges: list[SemverRange] = []
    ignore_globs: list[re.Pattern[str]] = []
    for entry in rule.ignore:
        if semver:
            try:
                ignore_ranges.append(parse_range(entry))
            except SelectionError:
                continue  # not a range: the entry still ignores the tag spelled exactly so
        elif any(c in entry for c in "*?["):
            ignore_globs.append(re.compile(fnmatch.translate(entry)))

    return CompiledRule(
        rule=rule,
        range=parse_range(rule.range) if rule.range is not None else None,
        include=include,
        exclude=exclude,
        extract=extract,
        lines_only=lines_only,
        extract_lines=extract_lines,
        extract_every_line=(
            include.every_line
            if extract_lines is not None
            and include is not None
            and rule.extract is not None
            and extracts_the_only_group(rule.extract, include)
            else None
        ),
        calver=compile_calver(rule.calver) if rule.calver else None,
        ignore_tags=ignore_tags,
        ignore_ranges=tuple(ignore_ranges),
        ignore_globs=tuple(ignore_globs),
    )


def clear_caches() -> None:
    """Forget every remembered reading and match (benchmarks measure a cold start with it)."""
    _compile.cache_clear()
    clear_kind_memo()
    clear_parse_cache()
    layout_of.cache_clear()


def validate_rule(rule: SelectionRule) -> None:
    """Raise SelectionError(message, field=...) for a bad range, regex, template or format."""
    compile_rule(rule)
