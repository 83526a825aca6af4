"""Reading container tags as semantic versions: ``v`` prefixes, partial versions, variants.

Container tags are not pure SemVer 2.0: ``+`` is not allowed in a tag (OCI distribution spec),
so build metadata is written ``_build.5``; images ship flavours as suffixes (``-alpine``,
``-slim-bookworm``) that SemVer would read as prereleases. This module separates the
prerelease (``-rc.1``, ``-beta2``...) from the variant (``-alpine``) so each can be ruled on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: A SemVer precedence key: (major, minor, patch, is_release, prerelease identifiers).
#: Identifiers compare as SemVer §11 says: numbers numerically and below words.
Key = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]

_TAG = re.compile(
    r"(?P<v>[vV])?"
    r"(?P<major>0|[1-9]\d*)"
    r"(?:\.(?P<minor>0|[1-9]\d*)(?:\.(?P<patch>0|[1-9]\d*))?)?"
    r"(?:-(?P<suffix>[0-9A-Za-z][0-9A-Za-z.-]*))?"
    r"(?:[+_](?P<build>[0-9A-Za-z][0-9A-Za-z._-]*))?"
)

#: Words that mark a prerelease; anything else after ``-`` is a variant (``alpine``, ``slim``).
_PRERELEASE_WORD = re.compile(
    r"(?:alpha|beta|rc|pre|preview|dev|snapshot|nightly|canary|next|milestone|ea|cr|[abm](?=\d))"
    r"\d*",
    re.IGNORECASE,
)
_IDENT = re.compile(r"[^.-]+")


@dataclass(frozen=True, slots=True)
class SemverTag:
    """A tag read as a version."""

    key: Key
    #: the SemVer prerelease, e.g. ``rc.1``; empty for a release.
    prerelease: str
    #: the flavour suffix, e.g. ``alpine``; empty for the plain image.
    variant: str
    #: the tag had fewer than three numbers (``1.2``).
    partial: bool
    #: build metadata (never makes a version newer).
    build: str
    #: the tag starts with ``v``.
    v_prefix: bool

    @property
    def core(self) -> tuple[int, int, int]:
        return self.key[0], self.key[1], self.key[2]

    @property
    def version(self) -> str:
        """The version as SemVer text, without prefix, variant or build."""
        text = "{}.{}.{}".format(*self.core)
        return f"{text}-{self.prerelease}" if self.prerelease else text


_SEPARATORS = re.compile(r"[.-]")


@lru_cache(maxsize=4096)
def prerelease_key(prerelease: str) -> tuple[tuple[int, int | str], ...]:
    """SemVer §11 ordering of dot-separated prerelease identifiers."""
    if not prerelease:
        return ()
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _SEPARATORS.split(prerelease)
    )


#: Where the parts of a suffix lie: (prerelease, variant before it, variant after it), each a
#: (start, end) span. The variant is the two outer parts joined by ``-``.
SuffixSpans = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def suffix_spans(suffix: str) -> SuffixSpans:
    """Where ``split_suffix`` cuts ``suffix``.

    The cuts depend only on which characters are digits, letters, ``.`` or ``-`` (never on
    which digit), so tags of one shape (see ``semver_columns``) share them.
    """
    spans = [(m.start(), m.end(), m.group()) for m in _IDENT.finditer(suffix)]
    start = next(
        (
            i
            for i, (_, _, word) in enumerate(spans)
            if _PRERELEASE_WORD.fullmatch(word) or (i == 0 and word.isdigit())
        ),
        None,
    )
    if start is None:
        return (0, 0), (0, len(suffix)), (len(suffix), len(suffix))
    end = start + 1
    while end < len(spans) and (
        spans[end][2].isdigit() or _PRERELEASE_WORD.fullmatch(spans[end][2])
    ):
        end += 1
    pre_start, pre_end = spans[start][0], spans[end - 1][1]
    before_end = len(suffix[:pre_start].rstrip(".-"))
    after_start = len(suffix) - len(suffix[pre_end:].lstrip(".-"))
    return (pre_start, pre_end), (0, before_end), (after_start, len(suffix))


@lru_cache(maxsize=4096)
def split_suffix(suffix: str) -> tuple[str, str]:
    """Split what follows ``1.2.3-`` into (prerelease, variant).

    The prerelease starts at the first prerelease word (or a leading number, as SemVer reads
    ``1.2.3-1``) and runs over following words and numbers; everything else is the variant:
    ``rc.1-alpine`` -> (``rc.1``, ``alpine``), ``alpine-beta2`` -> (``beta2``, ``alpine``).
    """
    (pre_start, pre_end), (_, before_end), (after_start, _) = suffix_spans(suffix)
    before, after = suffix[:before_end], suffix[after_start:]
    return suffix[pre_start:pre_end], "-".join(p for p in (before, after) if p)


#: (key, prerelease, variant, partial, build, v_prefix): SemverTag's fields as a plain tuple,
#: which the selection loop unpacks 100,000 times faster than it reads attributes.
Fields = tuple[Key, str, str, bool, str, bool]

# Reading a tag is a pure function of its text, and the daemon reads the same tag lists every
# cycle for every environment; remembering readings turns the second cycle's parse into a
# dict lookup. Cleared wholesale when it grows past _CACHE_LIMIT, so memory stays bounded.
_CACHE_LIMIT = 1_000_000
_cache: dict[str, Fields | None] = {}
_NO_PRERELEASE: tuple[tuple[int, int | str], ...] = ()


def read_fields(tag: str) -> Fields | None:
    """Read ``tag`` without the cache (the selection loop does its own caching)."""
    m = _TAG.fullmatch(tag)
    if m is None:
        return None
    vee, major, minor, patch, suffix, build = m.groups()
    if suffix:
        prerelease, variant = split_suffix(suffix)
        pre_key = prerelease_key(prerelease)
    else:
        prerelease = variant = ""
        pre_key = _NO_PRERELEASE
    key: Key = (
        int(major),
        int(minor) if minor else 0,
        int(patch) if patch else 0,
        0 if prerelease else 1,
        pre_key,
    )
    return key, prerelease, variant, patch is None, build or "", vee is not None


def parse_fields(tag: str) -> Fields | None:
    """``parse_tag`` as a tuple, remembered across calls; None when ``tag`` is not a version."""
    try:
        return _cache[tag]
    except KeyError:
        pass
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    fields = _cache[tag] = read_fields(tag)
    return fields


def semver_cache() -> dict[str, Fields | None]:
    """The remembered readings, for a hot loop to look up and fill with ``read_fields``."""
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    return _cache


def clear_cache() -> None:
    """Forget remembered readings (benchmarks measure a cold start with it)."""
    _cache.clear()


def parse_tag(tag: str) -> SemverTag | None:
    """Read ``tag`` as a version, or None when it is not one (``latest``, ``1.2.3.4``)."""
    fields = parse_fields(tag)
    return SemverTag(*fields) if fields is not None else None
