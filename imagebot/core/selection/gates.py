"""The gates every tag passes, in the order docs/policies.md lists them.

A gate is a small function ``(tag, context) -> Rejection | None``; the first gate that
rejects a tag gives its reason, and the tags no gate rejects are ranked by the strategy.
``GATES`` is the whole chain; a rule runs the gates it switches on (``Gate.applies``).
The promotion gates (hold, soak, checks, window) continue the chain in
``imagebot.core.promotion.gates``, on the versions an upstream environment ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .build_tags import build_tag_kind
from .rule import Rejection, TagInfo
from .versions import SemverTag

if TYPE_CHECKING:
    from .compiled import CompiledRule

ONLY_IF_ASKED = "chosen only when include asks for it"
_IGNORED = Rejection("ignore", "listed in ignore")
_PARTIAL = Rejection("partial", "partial version (set partial: true to read 1.2 as 1.2.0)")
_PRERELEASE = Rejection("prerelease", "prerelease (set prerelease: true to allow)")
_VARIANT = Rejection("variant", "has a variant suffix (set include or variant: any to choose one)")
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
    #: gate -> its rejection, for gates whose words are the same for every tag of one choice
    #: (made once: a rejection per tag cost a fifth of the time).
    said: Mapping[str, Rejection] = field(default_factory=dict)


def said_once(c: CompiledRule, running: Running) -> dict[str, Rejection]:
    """The rejections of ``Context.said``."""
    include, after = c.rule.include, f"the running {running.tag}"
    descending = c.strategy.honours_order and c.rule.order == "desc"
    blocked = f"{running.unreadable}, so a move could be a downgrade; staying on it"
    behind = f"{'ranks after' if descending else c.strategy.behind} {after}"
    return {
        "include": Rejection(
            "include", f"does not match include '{include}'", {"pattern": include}
        ),
        "range": Rejection("range", f"outside range '{c.rule.range}'", {"range": c.rule.range}),
        "variant": Rejection("variant", f"variant differs from {after}"),
        "allow": Rejection("allow", f"beyond allow: {c.rule.allow} from {after}"),
        "downgrade": Rejection(
            "downgrade",
            f"{blocked} (set replace_unreadable: true to replace it)"
            if running.blocks
            else f"{behind} (downgrade not allowed)",
        ),
    }


@dataclass(frozen=True)
class Gate:
    """One named step of the chain."""

    name: str
    check: Callable[[Candidate, Context], Rejection | None]
    #: whether the gate can reject anything under this rule and running tag.
    applies: Callable[[CompiledRule, Running], object]


def _ignored(tag: Candidate, ctx: Context) -> Rejection | None:
    c = ctx.compiled
    hit = tag.name in c.ignore_tags or any(g.match(tag.name) for g in c.ignore_globs)
    if not hit and c.ignore_ranges and (version := c.version(tag.name)) is not None:
        hit = any(r.contains(version.key) for r in c.ignore_ranges)
    return _IGNORED if hit else None


def _included(tag: Candidate, ctx: Context) -> Rejection | None:
    value = ctx.compiled.included(tag.name)
    if value is None:
        return ctx.said["include"]
    tag.value = value
    return None


def _excluded(tag: Candidate, ctx: Context) -> Rejection | None:
    hit = ctx.compiled.excluded(tag.name)
    return (
        None if hit is None else Rejection("exclude", f"matches exclude '{hit}'", {"pattern": hit})
    )


def _build_tag(tag: Candidate, ctx: Context) -> Rejection | None:
    kind = build_tag_kind(tag.name)
    return Rejection("build-tag", f"{kind}, {ONLY_IF_ASKED}") if kind else None


def _read(tag: Candidate, ctx: Context) -> Rejection | None:
    return ctx.compiled.strategy.read(tag, ctx)


def _partial(tag: Candidate, ctx: Context) -> Rejection | None:
    version, base = tag.version, ctx.running.version
    if version is None or not version.partial:
        return None
    # A running 12.14 may move to 12.15: its precision is kept, as Renovate keeps it.
    same = base is not None and base.precision == version.precision
    return None if same and ctx.compiled.rule.keep_precision else _PARTIAL


def _prerelease(tag: Candidate, ctx: Context) -> Rejection | None:
    version = tag.version
    if version is None or not version.prerelease:
        return None
    base = ctx.running.version
    if base is not None and base.prerelease and base.core == version.core:
        return None  # a running prerelease may reach its release and newer prereleases of it
    named = ctx.compiled.named_cores
    if version.core in named or (named and ctx.compiled.rule.range_style == "masterminds"):
        return None  # the range names a prerelease (of this release, as npm has it)
    return _PRERELEASE


def _variant(tag: Candidate, ctx: Context) -> Rejection | None:
    base = ctx.running.version
    if tag.version is None or (base is None and ctx.compiled.include is not None):
        return None  # an include pattern already chose which variants qualify
    wanted = base.variant if base is not None else ""
    if tag.version.variant == wanted:
        return None
    return ctx.said["variant"] if base is not None else _VARIANT


def _range(tag: Candidate, ctx: Context) -> Rejection | None:
    c = ctx.compiled
    if c.range is None or tag.version is None or c.range.contains(tag.version.key):
        return None
    return ctx.said["range"]


def _allow(tag: Candidate, ctx: Context) -> Rejection | None:
    base, version, allow = ctx.running.version, tag.version, ctx.compiled.rule.allow
    if base is None or version is None:
        return None
    if version.key[0] == base.key[0] and (allow == "minor" or version.key[1] == base.key[1]):
        return None
    return ctx.said["allow"]


def _downgrade(tag: Candidate, ctx: Context) -> Rejection | None:
    running = ctx.running
    if running.blocks:
        return ctx.said["downgrade"]
    if running.key is None:
        return None
    if ctx.compiled.strategy.honours_order and ctx.compiled.rule.order == "desc":
        return ctx.said["downgrade"] if tag.key > running.key else None
    return ctx.said["downgrade"] if tag.key < running.key else None


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


def _semver(c: CompiledRule) -> bool:
    return c.strategy.reads_versions


#: The chain, in the order docs/policies.md documents ("The order of the gates").
GATES: tuple[Gate, ...] = (
    Gate("ignore", _ignored, lambda c, running: bool(c.rule.ignore)),
    Gate("include", _included, lambda c, running: c.include is not None),
    Gate("exclude", _excluded, lambda c, running: bool(c.exclude)),
    Gate(
        "build-tag", _build_tag, lambda c, running: not c.include and c.strategy.rejects_build_tags
    ),
    Gate("read", _read, lambda c, running: True),
    Gate("partial", _partial, lambda c, running: _semver(c) and not c.rule.partial),
    Gate("prerelease", _prerelease, lambda c, running: _semver(c) and not c.rule.prerelease),
    Gate("variant", _variant, lambda c, running: _semver(c) and c.rule.variant == "match"),
    Gate("range", _range, lambda c, running: c.range is not None),
    Gate("allow", _allow, lambda c, running: c.rule.allow != "major" and bool(running.version)),
    Gate("downgrade", _downgrade, lambda c, running: not c.rule.downgrade and running.tag),
    Gate("min_age", _min_age, lambda c, running: c.rule.min_age is not None),
)
