"""The bulk reader (tags grouped by shape) reads every tag exactly as the per-tag reader does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from imagebot.core.selection import parse_tag
from imagebot.core.selection.semver_shapes import layout_of, reading, shapes
from imagebot.core.selection.tag_kinds import classify, classify_many, kind_follows_shape

# Pieces real tags are made of, so that drawn tags are often versions, variants or hashes.
_PIECES = ["0", "1", "7", "10", "09", "42", ".", "-", "_", "v", "rc", "alpine", "beta2", "a1"]
_PIECES += ["sha-", "sha256-", "abcdef", "latest", "slim", "3.19", "x"]
tag_texts = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8).map("".join)


@settings(max_examples=2000, deadline=None)
@given(tag=tag_texts)
def test_shape_reading_equals_parse_tag(tag: str) -> None:
    """A tag's shape says whether it is a version, and its layout cuts out the same key,
    variant and partial flag that ``parse_tag`` reads."""
    [shape] = shapes([tag])
    layout = layout_of(shape)
    parsed = parse_tag(tag)
    assert (layout is None) == (parsed is None)
    if layout is not None and parsed is not None:
        assert reading(layout, tag) == (parsed.key, parsed.variant, parsed.partial)


@settings(max_examples=2000, deadline=None)
@given(tag=tag_texts)
def test_build_tag_kind_follows_shape(tag: str) -> None:
    """Where ``kind_follows_shape`` says so, the shape's build-tag kind is the tag's."""
    [shape] = shapes([tag])
    if kind_follows_shape(shape):
        assert classify(shape) == classify(tag)


@given(tags=st.lists(tag_texts | st.sampled_from(["a\nb", "", "LATEST"]), max_size=20))
def test_classify_many_equals_classify(tags: list[str]) -> None:
    """Classifying a list in one pass gives each tag's own classification, newlines and all."""
    assert classify_many(tags) == [classify(tag) for tag in tags]
    assert shapes(tags) == [shapes([tag])[0] for tag in tags]
