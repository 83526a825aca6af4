"""Reading container tags as versions, with a SemVer 2.0 §11 precedence key.

Container tags are not SemVer: ``+`` is not allowed in a tag, so build metadata is written
``_build.5``; flavours are suffixes (``-alpine``) SemVer would read as prereleases; Docker
official images write prereleases without a hyphen (``3.13.0rc2``). ``semver.Version`` reads
none of these (and took half the selection budget), so it is the tests' reference instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Generic, NamedTuple, TypeVar

#: A SemVer precedence key: (major, minor, patch, is_release, prerelease identifiers).
#: Identifiers compare as SemVer §11 says: numbers numerically and below words.
Key = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]

_TAG = re.compile(
    r"(?P<v>[vV])?"
    r"(?P<major>\d+)"  # leading zeros (22.04) read as Renovate, Flux and Argo CD read them
    r"(?:\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?)?"
    r"(?P<docker>(?:a|b|rc|alpha|beta)(?:0|[1-9]\d*))?"
    r"(?:-(?P<suffix>[0-9A-Za-z][0-9A-Za-z.-]*))?"
    r"(?:[+_](?P<build>[0-9A-Za-z][0-9A-Za-z._-]*))?"
)

#: Words that mark a prerelease; anything else after ``-`` is a variant (``alpine``, ``slim``).
_PRERELEASE_WORD = re.compile(
    r"(?:alpha|beta|rc|pre|preview|dev|snapshot|nightly|canary|next|milestone|ea|cr|[abm](?=\d))"
    r"\d*",
    re.IGNORECASE,
)
K = TypeVar("K")
V = TypeVar("V")
_SEPARATORS = re.compile(r"[.-]")
_RELEASE: tuple[str, str, tuple[()]] = ("", "", ())
_WORD_NUMBER = re.compile(r"([A-Za-z]+)(\d+)")


class SemverTag(NamedTuple):
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
    #: how many numbers the tag writes (``12.14``: 2).
    precision: int

    @property
    def core(self) -> tuple[int, int, int]:
        return self.key[0], self.key[1], self.key[2]

    @property
    def version(self) -> str:
        """The version as SemVer text, without prefix, variant or build."""
        text = "{}.{}.{}".format(*self.core)
        return f"{text}-{self.prerelease}" if self.prerelease else text


def prerelease_key(prerelease: str) -> tuple[tuple[int, int | str], ...]:
    """SemVer §11 ordering of dot-separated prerelease identifiers."""
    if not prerelease:
        return ()
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _SEPARATORS.split(prerelease)
    )


Suffix = tuple[str, str, tuple[tuple[int, int | str], ...]]


def split_suffix(suffix: str) -> Suffix:
    """Split what follows ``1.2.3-`` into (prerelease, variant, prerelease key).

    The prerelease starts at the first prerelease word (or a leading number, as SemVer reads
    ``1.2.3-1``) and runs over following words and numbers; everything else is the variant:
    ``rc.1-alpine`` -> (``rc.1``, ``alpine``), ``alpine-beta2`` -> (``beta2``, ``alpine``).
    """
    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"[^.-]+", suffix)]
    start = next(
        (
            i
            for i, (_, _, word) in enumerate(words)
            if _PRERELEASE_WORD.fullmatch(word) or (i == 0 and word.isdigit())
        ),
        None,
    )
    if start is None:
        return "", suffix, ()
    end = start + 1
    while end < len(words) and (
        words[end][2].isdigit() or _PRERELEASE_WORD.fullmatch(words[end][2])
    ):
        end += 1
    before = suffix[: words[start][0]].rstrip(".-")
    after = suffix[words[end - 1][1] :].lstrip(".-")
    variant = "-".join(p for p in (before, after) if p)
    prerelease = suffix[words[start][0] : words[end - 1][1]]
    return prerelease, variant, prerelease_key(prerelease)


def parse_tag(tag: str, split: Callable[[str], Suffix] = split_suffix) -> SemverTag | None:
    """Read ``tag`` as a version, or None when it is not one (``latest``, ``1.2.3.4``)."""
    m = _TAG.fullmatch(tag)
    if m is None:
        return None
    vee, major, minor, patch, docker, suffix, build = m.groups()
    prerelease, variant, pre_key = split(suffix) if suffix else _RELEASE
    if docker:  # 3.13.0rc2: ordered as rc.2, and the suffix is all variant
        if prerelease:
            return None
        variant, prerelease = suffix or "", docker
        pre_key = prerelease_key(_WORD_NUMBER.sub(r"\1.\2", docker))
    key: Key = (
        int(major),
        int(minor) if minor else 0,
        int(patch) if patch else 0,
        0 if prerelease else 1,
        pre_key,
    )
    precision = 1 if minor is None else 2 if patch is None else 3
    return SemverTag(key, prerelease, variant, patch is None, build or "", bool(vee), precision)


class Memo(Generic[K, V]):
    """Remembered results of a pure function of a tag, bounded (it starts over when full): a
    daemon's later cycles read the same tags, and find their readings and matches here."""

    LIMIT = 200_000

    def __init__(self, compute: Callable[[K], V]) -> None:
        self._compute = compute
        self._known: dict[K, V] = {}

    def __call__(self, item: K) -> V:
        known = self._known.get(item, self)
        if known is not self:
            return known  # type: ignore[return-value]
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        self._known[item] = value = self._compute(item)
        return value


def version_reader() -> Memo[str, SemverTag | None]:
    """``parse_tag`` with bounded memos of the tags and suffixes it has read: a compiled rule
    owns one, so a daemon's later cycles read each tag once."""
    suffixes = Memo(split_suffix)
    return Memo(partial(parse_tag, split=suffixes))
