"""The strategies, one registry entry each: how a tag is read into an ordering key, what the
registry must supply (the engine asks ``needs_created``, ``needs_digest`` instead of comparing
strategy names), how ties are broken and how the choice is described."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .build_tags import MUTABLE_TAGS
from .gates import Candidate, Context
from .rule import Rejection
from .versions import parse_tag

_NUMBER_CHARS = frozenset("0123456789.-+")


def _cannot_read(tag: Candidate, why: str) -> Rejection:
    words = why if tag.value == tag.name else f"{tag.value!r}: {why}"
    return Rejection("read", words, {"value": tag.value})


def _read_semver(tag: Candidate, ctx: Context) -> Rejection | None:
    version = ctx.compiled.version(tag.value)
    if version is None:
        return _cannot_read(tag, "not a semver version")
    tag.version, tag.key = version, version.key
    return None


def _read_numeric(tag: Candidate, ctx: Context) -> Rejection | None:
    # Flux's numerical policy fails the whole image when one tag is not a number; here an
    # unreadable tag is skipped with its own reason and the rest still compete.
    value = tag.value
    if value.isdigit():
        tag.key = int(value)
        return None
    if value and _NUMBER_CHARS.issuperset(value):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite():
            tag.key = number
            return None
    return _cannot_read(tag, "not a number")


def _read_lexical(tag: Candidate, ctx: Context) -> Rejection | None:
    if not tag.value:
        return _cannot_read(tag, "extract gave an empty value")
    tag.key = tag.value
    return None


def _read_calver(tag: Candidate, ctx: Context) -> Rejection | None:
    calver = ctx.compiled.calver
    assert calver is not None
    tag.key = calver.read(tag.value)
    return _cannot_read(tag, calver.off_format) if tag.key is None else None


def _read_build_time(tag: Candidate, ctx: Context) -> Rejection | None:
    tag.key = tag.info.created if tag.info is not None else None
    return Rejection("read", "creation time unknown") if tag.key is None else None


def _read_followed(tag: Candidate, ctx: Context) -> Rejection | None:
    if tag.name != ctx.follow:
        return Rejection("read", f"strategy digest follows only {ctx.follow!r}")
    if tag.info is None or tag.info.digest is None:
        return Rejection("read", f"followed tag {ctx.follow!r} has no known digest")
    tag.key = 0
    return None


def _plain_first(tag: Candidate, ctx: Context) -> tuple[Any, ...]:
    """semver ties: ``1.2.3`` beats ``1.2.3_build.7`` (build metadata never makes a version
    newer), a full version (keep_precision leaves only the running tag's precision) and the
    running tag's ``v`` style win."""
    parsed = parse_tag(tag.name)
    if parsed is None:  # the version came from extract; the name has no spelling rules
        return ()
    base = ctx.running.version
    want_v = base.v_prefix if base is not None else False
    return (not parsed.build, parsed.precision == 3, parsed.v_prefix == want_v)


def _release_first(tag: Candidate, ctx: Context) -> tuple[Any, ...]:
    """newest-build ties: a mutable tag never wins (Argo CD Image Updater could pick
    ``latest`` over the release it was pushed with); a higher version does."""
    parsed = parse_tag(tag.name)
    return (tag.name.lower() not in MUTABLE_TAGS, (1, parsed.key) if parsed else (0, ()))


@dataclass(frozen=True)
class Strategy:
    """One way of ordering tags."""

    name: str
    #: the read gate: sets ``tag.key`` or says why the tag cannot be ordered.
    read: Callable[[Candidate, Context], Rejection | None]
    #: how the chosen tag is described (``order: asc``, ``desc``), formatted with ``rule``,
    #: ``follow`` and ``where`` (`` in '^1'`` for a semver range).
    phrase: tuple[str, str]
    #: the registry must supply each image's build time.
    needs_created: bool = False
    #: the version is the followed tag's digest: the plan writes it, the registry supplies it.
    needs_digest: bool = False
    #: the semver gates (partial, prerelease, variant, range, allow) apply.
    reads_versions: bool = False
    #: ``order: desc`` turns the ranking around.
    honours_order: bool = False
    #: build tags (latest, sha-…) are rejected unless include asks for them.
    rejects_build_tags: bool = True
    #: how a tag below the running one is described by the downgrade gate.
    behind: str = "older than"
    #: why a running tag the strategy cannot read cannot be compared.
    unreadable: str = "the running {current} cannot be read ({why})"
    #: tie-break after "the running tag wins": a higher tuple wins.
    preference: Callable[[Candidate, Context], tuple[Any, ...]] = lambda tag, ctx: ()


STRATEGIES: dict[str, Strategy] = {
    "semver": Strategy(
        "semver",
        _read_semver,
        ("highest version{where}",) * 2,
        reads_versions=True,
        unreadable="the running {current} is not a version",
        preference=_plain_first,
    ),
    "numeric": Strategy(
        "numeric", _read_numeric, ("highest number", "lowest number"), honours_order=True
    ),
    "lexical": Strategy(
        "lexical",
        _read_lexical,
        ("last in lexical order", "first in lexical order"),
        honours_order=True,
    ),
    "calver": Strategy(
        "calver",
        _read_calver,
        ("latest {rule.calver} date", "earliest {rule.calver} date"),
        honours_order=True,
    ),
    "newest-build": Strategy(
        "newest-build",
        _read_build_time,
        ("newest build",) * 2,
        needs_created=True,
        behind="built before",
        unreadable="the running {current} has no known creation time",
        preference=_release_first,
    ),
    "digest": Strategy(
        "digest",
        _read_followed,
        ("follows {follow!r}",) * 2,
        needs_digest=True,
        rejects_build_tags=False,
    ),
}
