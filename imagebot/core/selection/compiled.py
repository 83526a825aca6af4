"""Checking a rule once and compiling its ranges, patterns and formats for repeated use."""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from dataclasses import dataclass, field
from datetime import timedelta

from imagebot.errors import SelectionError

from .calver import CalverFormat, compile_calver
from .patterns import UserPattern, compile_pattern, compile_template
from .ranges import SemverRange, parse_range
from .rule import SelectionRule
from .strategies import STRATEGIES, Strategy
from .versions import Memo, SemverTag, version_reader


@dataclass(frozen=True, eq=False)
class CompiledRule:
    """A rule whose strings have been parsed, and the memos of what it read."""

    rule: SelectionRule
    strategy: Strategy
    range: SemverRange | None
    include: UserPattern | None
    exclude: tuple[UserPattern, ...]
    calver: CalverFormat | None
    ignore_tags: frozenset[str]
    ignore_globs: tuple[re.Pattern[str], ...]
    ignore_ranges: tuple[SemverRange, ...]
    #: tag -> the value include (and extract) make of it; None: include does not match.
    included: Memo[str, str | None]
    #: tag -> the first exclude pattern that matches it, or None.
    excluded: Memo[str, str | None]
    #: releases whose prereleases the range spells out (see ``SemverRange.prerelease_cores``).
    named_cores: frozenset[tuple[int, int, int]]
    #: tag -> what it reads as a version (None: not a version).
    version: Memo[str, SemverTag | None] = field(default_factory=version_reader)

    @property
    def needs_created(self) -> bool:
        """Whether selection needs each image's build time from the registry."""
        return self.strategy.needs_created or self.rule.min_age is not None

    @property
    def needs_digest(self) -> bool:
        """Whether the version is a digest (the plan always writes it)."""
        return self.strategy.needs_digest


def compile_rule(rule: SelectionRule) -> CompiledRule:
    """``rule`` checked and compiled, once per distinct rule: equal rules (500 entries all
    saying range: ^1, or the same policy in a daemon's every cycle) share one compiled rule
    and the memos of its readings. SelectionError(field=...) names the first bad field."""
    if not isinstance(rule.exclude, tuple) or not isinstance(rule.ignore, tuple):
        rule = dataclasses.replace(rule, exclude=tuple(rule.exclude), ignore=tuple(rule.ignore))
    return _compile(rule)


@functools.lru_cache(maxsize=10_000)
def _compile(rule: SelectionRule) -> CompiledRule:
    for name, allowed in (
        ("strategy", tuple(STRATEGIES)),
        ("order", ("asc", "desc")),
        ("variant", ("match", "any")),
        ("allow", ("major", "minor", "patch")),
        ("range_style", ("npm", "masterminds")),
    ):
        value = getattr(rule, name)
        if value not in allowed:
            raise SelectionError(f"{name} {value!r} is not one of {', '.join(allowed)}", field=name)
    strategy = STRATEGIES[rule.strategy]
    name, semver = rule.strategy, strategy.reads_versions
    calver = "give a format, e.g. 'YYYY.MM.DD'," if name == "calver" else "calver goes"
    misused = {  # field -> (wrong, why)
        "range": (rule.range is not None and not semver, "range applies to strategy semver"),
        "allow": (rule.allow != "major" and not semver, "allow applies to strategy semver"),
        "calver": (bool(rule.calver) != (name == "calver"), f"{calver} with strategy calver"),
        "min_age": (rule.min_age is not None and rule.min_age < timedelta(0), "min_age < 0"),
        "follow": (rule.follow is not None and name != "digest", "follow goes with digest"),
    }
    for field_name, (wrong, why) in misused.items():
        if wrong:
            raise SelectionError(f"{why} (strategy is {name})", field=field_name)
    include = compile_pattern(rule.include, "include") if rule.include is not None else None
    globs: list[re.Pattern[str]] = []
    ranges: list[SemverRange] = []
    for entry in rule.ignore:
        if semver and (parsed := _as_range(entry)) is not None:
            ranges.append(parsed)
        elif any(c in entry for c in "*?["):
            globs.append(re.compile(fnmatch.translate(entry)))
    exclude = tuple(compile_pattern(p, "exclude") for p in rule.exclude)
    extract = compile_template(rule.extract, include) if rule.extract is not None else None

    def included(tag: str) -> str | None:
        match = include.search(tag) if include is not None else None
        if match is None:
            return None
        return extract(match) if extract is not None else tag

    def excluded(tag: str) -> str | None:
        return next((p.text for p in exclude if p.search(tag)), None)

    semver_range = parse_range(rule.range) if rule.range is not None else None
    return CompiledRule(
        rule=rule,
        strategy=strategy,
        range=semver_range,
        named_cores=semver_range.prerelease_cores() if semver_range else frozenset(),
        include=include,
        exclude=exclude,
        calver=compile_calver(rule.calver) if rule.calver else None,
        ignore_tags=frozenset(rule.ignore),
        ignore_globs=tuple(globs),
        ignore_ranges=tuple(ranges),
        included=Memo(included),
        excluded=Memo(excluded),
    )


def _as_range(entry: str) -> SemverRange | None:
    try:
        return parse_range(entry)
    except SelectionError:
        return None


def ignore_entry_kind(entry: str, strategy: str) -> str | None:
    """How an ignore entry is read (``tag``, ``range``, ``glob``); None: it is none of these."""
    if STRATEGIES[strategy].reads_versions and _as_range(entry) is not None:
        return "range"
    if any(c in entry for c in "*?["):
        return "glob"
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", entry):
        return "tag"
    return None


def validate_rule(rule: SelectionRule) -> None:
    """Raise SelectionError(message, field=...) for a bad range, regex, template or format.
    A good rule keeps what was compiled: it is not compiled twice."""
    compile_rule(rule)
