"""Reading many tags as versions at once, grouped by shape.

A tag's shape is the tag with every digit 1-9 written ``1`` (``0`` stays, letters stay):
``12.0.3-rc.4`` and ``57.0.9-rc.1`` both have the shape ``11.0.1-rc.1``. The tag regex treats
all of 1-9 alike, so the shape alone says whether a tag is a version, where its numbers lie,
what its suffix splits into and whether that split contains digits; and tags of one shape have
equal lengths, so the same slices cut every one of them.

Why: choosing from 100,000 tags seen for the first time has a budget of 100 ms, a microsecond
a tag, and one regex match per tag already takes that on a small VM. A busy repository has a
few hundred shapes, so the regex runs once per shape and the numbers are cut out with
``map``/``itemgetter``/``int`` passes that run in C. The per-tag reader (``semver_tags``) stays
the definition; a test checks both agree on every tag of a large mixed list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product, repeat
from operator import itemgetter
from typing import Any, TypeVar

from .semver_tags import _TAG, Key, prerelease_key, suffix_spans

_T = TypeVar("_T")
#: See ``Layout.columns``.
Columns = tuple[list[int], Iterable[int], Iterable[int], int, Iterable[Any]]
_DIGITS_AS_ONE = str.maketrans("23456789", "11111111")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the parts of every tag of one shape lie (positions in the tag)."""

    major: slice
    #: None for a partial version without it (read as 0).
    minor: slice | None
    patch: slice | None
    #: the prerelease's position; None for a release.
    prerelease: slice | None
    #: the variant when every tag of the shape has the same one (it has no digits), else None.
    variant: str | None
    #: the variant's two parts, joined by ``-`` when both are non-empty (variants with digits).
    variant_parts: tuple[slice, slice]
    #: the major as the shape writes it (``11``: any of 11-19, 21-29, ... 99).
    major_digits: str

    @property
    def partial(self) -> bool:
        return self.patch is None

    def majors(self, tags: Sequence[str]) -> list[int]:
        """The major version of each tag (all of this shape)."""
        return list(map(int, map(itemgetter(self.major), tags)))

    def columns(self, tags: Sequence[str]) -> Columns:
        """(majors, minors, patches, release flag, prerelease keys) of tags of this shape, as
        ``parse_tag`` reads them; the key of tag ``k`` is the tuple of the columns' ``k``-th
        items. Key tuples are left to the caller to build for the few tags that need one:
        100,000 of them cost more (allocation and garbage collection) than the reading."""
        majors = self.majors(tags)
        minors = map(int, map(itemgetter(self.minor), tags)) if self.minor else repeat(0)
        patches = map(int, map(itemgetter(self.patch), tags)) if self.patch else repeat(0)
        if self.prerelease is None:
            return majors, minors, patches, 1, repeat(())
        pre_keys = map(prerelease_key, map(itemgetter(self.prerelease), tags))
        return majors, minors, patches, 0, pre_keys

    def variants(self, tags: Sequence[str]) -> Iterable[str]:
        """The variant of each tag (all of this shape)."""
        if self.variant is not None:
            return repeat(self.variant, len(tags))
        before, after = self.variant_parts
        return [
            "-".join(p for p in (tag[before], tag[after]) if p)
            for tag in tags  # only variants with digits (``-alpine3.19``) get here
        ]


def shapes(values: list[str]) -> list[str]:
    """The shape of each value; one ``translate`` over the joined list when no value has a
    newline (tags cannot: the OCI distribution spec allows ``[A-Za-z0-9_.-]``)."""
    joined = "\n".join(values)
    if joined.count("\n") == len(values) - 1:
        return joined.translate(_DIGITS_AS_ONE).split("\n") if values else []
    return [value.translate(_DIGITS_AS_ONE) for value in values]


def group_by_shape(shaped: list[str], positions: Iterable[int]) -> dict[str, list[int]]:
    """The given positions of ``shaped``, grouped by shape, in input order."""
    groups: dict[str, list[int]] = {}
    for i in positions:
        shape = shaped[i]
        try:
            groups[shape].append(i)
        except KeyError:
            groups[shape] = [i]
    return groups


def pick(positions: list[int], items: Sequence[_T]) -> list[_T]:
    """``[items[i] for i in positions]`` in one C-level call."""
    if len(positions) == 1:
        return [items[positions[0]]]
    return list(itemgetter(*positions)(items))


#: Lines the tag regex could match: it needs a digit first, after an optional ``v``.
_MAY_BE_VERSION = re.compile(r"^[vV]?\d.*$", re.MULTILINE)


def layouts(distinct: Iterable[str]) -> dict[str, Layout | None]:
    """``layout_of`` each distinct shape. Most shapes of a busy repository are not versions
    (``sha-…`` tags have as many shapes as hex spellings), so one regex pass over the joined
    shapes picks out those that may be, and only those go through the tag regex."""
    read_as: dict[str, Layout | None] = dict.fromkeys(distinct)
    joined = "\n".join(read_as)
    if joined.count("\n") != len(read_as) - 1:  # a shape with a newline: one at a time
        return {shape: layout_of(shape) for shape in read_as}
    for shape in _MAY_BE_VERSION.findall(joined):
        read_as[shape] = layout_of(shape)
    return read_as


@lru_cache(maxsize=256)
def possible_majors(digits: str) -> tuple[int, ...] | None:
    """Every number a shape's major can be (``1``: 1-9, ``10``: 10, 20 ... 90), or None when
    there are too many to list (more than three digits)."""
    if len(digits) > 3 or not set(digits) <= {"0", "1"}:
        return None
    choices = ["0" if d == "0" else "123456789" for d in digits]
    return tuple(int("".join(ds)) for ds in product(*choices))


def _has_digit(text: str) -> bool:
    return any(c in "01" for c in text)  # a shape's digits are all 0 or 1


@lru_cache(maxsize=65_536)
def layout_of(shape: str) -> Layout | None:
    """How tags of ``shape`` read as versions, or None when they are not versions."""
    m = _TAG.fullmatch(shape)
    if m is None:
        return None

    def span(group: str) -> slice | None:
        start, end = m.span(group)
        return slice(start, end) if start >= 0 else None

    major = span("major")
    assert major is not None
    prerelease: slice | None = None
    variant: str | None = ""
    parts = (slice(0, 0), slice(0, 0))
    suffix = m["suffix"]
    if suffix:
        at = m.start("suffix")
        (pre_start, pre_end), (_, before_end), (after_start, after_end) = suffix_spans(suffix)
        if pre_end > pre_start:
            prerelease = slice(at + pre_start, at + pre_end)
        parts = (slice(at, at + before_end), slice(at + after_start, at + after_end))
        before, after = shape[parts[0]], shape[parts[1]]
        variant = None if _has_digit(before + after) else "-".join(p for p in (before, after) if p)
    return Layout(major, span("minor"), span("patch"), prerelease, variant, parts, shape[major])


def reading(layout: Layout, tag: str) -> tuple[Key, str, bool]:
    """(key, variant, partial) of one tag of this layout; for tests that compare readers."""
    majors, minors, patches, release, pre_keys = layout.columns([tag])
    key: Key = (majors[0], next(iter(minors)), next(iter(patches)), release, next(iter(pre_keys)))
    return key, next(iter(layout.variants([tag]))), layout.partial
