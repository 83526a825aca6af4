"""The gates every tag passes, in the order docs/policies.md lists them.

A gate is a small function ``(tag, context) -> Rejection | None``; the first gate that
rejects a tag gives its reason, and the tags no gate rejects are ranked by the strategy.
``GATES`` is the whole chain; a rule runs the gates it switches on (``Gate.applies``).
Promotion gates (soak, windows, holds) are added to this list, not to ``select``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .build_tags import build_tag_kind
from .rule import Rejection, TagInfo
from .versions import SemverTag

if TYPE_CHECKING:
    from .compiled import CompiledRule

ONLY_IF_ASKED = "chosen only when include asks for it"
#: Build times at or before this are not real: reproducible builds write the Unix epoch
#: (SOURCE_DATE_EPOCH=0) or Go's zero time, 0001-01-01.
IMPLAUSIBLE_BEFORE = datetime(1970, 1, 2, tzinfo=UTC)


@dataclass(slots=True)
class Candidate:
    """One tag on its way through the gates; gates fill in what they read."""

    name: str
    info: TagInfo | None
    #: what the strategy reads: the tag, or what include's extract made of it.
    value: str
    #: the strategy's ordering key, set by the read gate.
    key: Any = None
    #: the tag read as a version (strategy semver).
    version: SemverTag | None = None


@dataclass(frozen=True)
class Running:
    """The running tag as the rule reads it: the base for downgrade, allow and variant."""

    tag: str | None
    key: Any = None
    version: SemverTag | None = None
    #: why the running tag cannot be compared ("" when it can, or nothing runs).
    unreadable: str = ""
    #: it cannot be compared and may be newer than every candidate: the image stays.
    blocks: bool = False


@dataclass(frozen=True)
class Context:
    """What every gate may consult besides the tag."""

    compiled: CompiledRule
    running: Running
    now: datetime | None
    #: strategy digest: the tag whose digest is followed.
    follow: str | None = None


Check = Callable[[Candidate, Context], Rejection | None]


@dataclass(frozen=True)
class Gate:
    name: str
    check: Check
    #: whether a rule switches this gate on.
    applies: Callable[[CompiledRule], bool]


def _ignored(tag: Candidate, ctx: Context) -> Rejection | None:
    c = ctx.compiled
    hit = tag.name in c.ignore_tags or any(g.match(tag.name) for g in c.ignore_globs)
    if not hit and c.ignore_ranges and (version := c.version(tag.name)) is not None:
        hit = any(r.contains(version.key) for r in c.ignore_ranges)
    return Rejection("ignore", "listed in ignore") if hit else None


def _included(tag: Candidate, ctx: Context) -> Rejection | None:
    value = ctx.compiled.included(tag.name)
    if value is None:
        text = ctx.compiled.rule.include
        return Rejection("include", f"does not match include '{text}'", {"pattern": text})
    tag.value = value
    return None


def _excluded(tag: Candidate, ctx: Context) -> Rejection | None:
    hit = ctx.compiled.excluded(tag.name)
    if hit is None:
        return None
    return Rejection("exclude", f"matches exclude '{hit}'", {"pattern": hit})


def _build_tag(tag: Candidate, ctx: Context) -> Rejection | None:
    kind = build_tag_kind(tag.name)
    return Rejection("build-tag", f"{kind}, {ONLY_IF_ASKED}") if kind else None


def _read(tag: Candidate, ctx: Context) -> Rejection | None:
    return ctx.compiled.strategy.read(tag, ctx)


def _partial(tag: Candidate, ctx: Context) -> Rejection | None:
    if tag.version is not None and tag.version.partial:
        return Rejection("partial", "partial version (set partial: true to read 1.2 as 1.2.0)")
    return None


def _prerelease(tag: Candidate, ctx: Context) -> Rejection | None:
    version = tag.version
    if version is None or not version.prerelease:
        return None
    base = ctx.running.version
    if base is not None and base.prerelease and base.core == version.core:
        return None  # a running prerelease may reach its release and newer prereleases of it
    if version.core in ctx.compiled.named_cores:
        return None  # the range names a prerelease of this release (as node-semver allows)
    return Rejection("prerelease", "prerelease (set prerelease: true to allow)")


def _variant(tag: Candidate, ctx: Context) -> Rejection | None:
    base = ctx.running.version
    if tag.version is None or (base is None and ctx.compiled.include is not None):
        return None  # an include pattern already chose which variants qualify
    wanted = base.variant if base is not None else ""
    if tag.version.variant == wanted:
        return None
    if base is not None:
        return Rejection("variant", f"variant differs from the running {ctx.running.tag}")
    return Rejection("variant", "has a variant suffix (set include or variant: any to choose one)")


def _range(tag: Candidate, ctx: Context) -> Rejection | None:
    c = ctx.compiled
    if c.range is None or tag.version is None or c.range.contains(tag.version.key):
        return None
    return Rejection("range", f"outside range '{c.range.text}'", {"range": c.range.text})


def _allow(tag: Candidate, ctx: Context) -> Rejection | None:
    base, version, allow = ctx.running.version, tag.version, ctx.compiled.rule.allow
    if base is None or version is None:
        return None
    if version.key[0] == base.key[0] and (allow == "minor" or version.key[1] == base.key[1]):
        return None
    return Rejection("allow", f"beyond allow: {allow} from the running {ctx.running.tag}")


def _downgrade(tag: Candidate, ctx: Context) -> Rejection | None:
    running = ctx.running
    if running.blocks:
        return Rejection(
            "downgrade",
            f"{running.unreadable}, so a move could be a downgrade; staying on it "
            "(set replace_unreadable: true to replace it)",
        )
    if running.key is None:
        return None
    strategy = ctx.compiled.strategy
    descending = strategy.honours_order and ctx.compiled.rule.order == "desc"
    behind = tag.key > running.key if descending else tag.key < running.key
    if not behind:
        return None
    words = "ranks after" if descending else strategy.behind
    return Rejection("downgrade", f"{words} the running {running.tag} (downgrade not allowed)")


def age_words(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"


def tag_age(tag: Candidate, now: datetime) -> tuple[str, timedelta] | None:
    """(which time counts, age): the image's build time when it is plausible (after 1970-01-01
    and not in the future), else when imagebot first saw the tag; None when neither is known."""
    built = tag.info.created if tag.info is not None else None
    if built is not None and IMPLAUSIBLE_BEFORE < built <= now:
        return "built", now - built
    seen = tag.info.first_seen if tag.info is not None else None
    return ("first seen", now - seen) if seen is not None else None


def _min_age(tag: Candidate, ctx: Context) -> Rejection | None:
    limit = ctx.compiled.rule.min_age
    assert limit is not None and ctx.now is not None
    age = tag_age(tag, ctx.now)
    if age is None:
        return Rejection("min_age", "age unknown (no creation or first-seen time)")
    since, elapsed = age
    if elapsed >= limit:
        return None
    data = {"age_from": since, "age_seconds": elapsed.total_seconds()}
    return Rejection(
        "min_age",
        f"too new ({since} {age_words(elapsed)} ago, min_age {age_words(limit)})",
        data,
    )


#: The chain, in the order docs/policies.md documents ("The order of the gates").
GATES: tuple[Gate, ...] = (
    Gate("ignore", _ignored, lambda c: bool(c.rule.ignore)),
    Gate("include", _included, lambda c: c.include is not None),
    Gate("exclude", _excluded, lambda c: bool(c.exclude)),
    Gate("build-tag", _build_tag, lambda c: c.include is None and c.strategy.rejects_build_tags),
    Gate("read", _read, lambda c: True),
    Gate("partial", _partial, lambda c: c.strategy.reads_versions and not c.rule.partial),
    Gate("prerelease", _prerelease, lambda c: c.strategy.reads_versions and not c.rule.prerelease),
    Gate("variant", _variant, lambda c: c.strategy.reads_versions and c.rule.variant == "match"),
    Gate("range", _range, lambda c: c.range is not None),
    Gate("allow", _allow, lambda c: c.rule.allow != "major"),
    Gate("downgrade", _downgrade, lambda c: not c.rule.downgrade),
    Gate("min_age", _min_age, lambda c: c.rule.min_age is not None),
)
