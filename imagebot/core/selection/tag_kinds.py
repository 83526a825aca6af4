"""Tags that name a build, not a version: mutable tags, commit hashes, signatures.

They are never chosen unless an include pattern asks for them: Argo CD Image Updater's
newest-build strategy could pick ``latest`` when it tied with a release on creation time, and
lexical ordering puts ``sha-f00d`` above every ``1.x`` tag.
"""

from __future__ import annotations

import re
from itertools import compress

from .semver_shapes import shapes

#: Tags that registries and CI conventionally move from build to build.
MUTABLE_TAGS = frozenset(
    {
        "latest",
        "stable",
        "edge",
        "main",
        "master",
        "trunk",
        "develop",
        "development",
        "dev",
        "nightly",
        "canary",
        "next",
        "beta",
        "alpha",
        "rc",
        "head",
        "current",
        "release",
        "testing",
        "unstable",
        "rolling",
    }
)

_BUILD_TAG_ALTERNATIVES = (
    # cosign/sigstore store signatures, attestations and SBOMs as sha256-<digest>.sig/.att/.sbom.
    r"(?P<signature>sha256-[0-9a-f]{64}(?:\.[a-z]+)?)"
    # sha-abc1234 (docker/metadata-action), git-/commit- prefixes, or a bare hex commit id.
    r"|(?P<hash>(?:sha|git|commit|rev|g)[-_][0-9a-f]{7,64})"
    r"|(?P<bare>[0-9a-f]{7,64})"
)
_BUILD_TAG = re.compile(_BUILD_TAG_ALTERNATIVES)
#: Whole lines of newline-joined tags that ``classify`` gives a kind (all-digit strings are
#: numbers, not hashes; mutable tags in any case, tried only on lines of letters: a
#: case-blind alternation of 21 words at every line tripled the pass).
BUILD_TAG_LINE = re.compile(
    r"^(?:(?=[A-Za-z]+$)(?i:"
    + "|".join(sorted(MUTABLE_TAGS))
    + r")|(?:sha256-[0-9a-f]{64}(?:\.[a-z]+)?)"
    + r"|(?:(?:sha|git|commit|rev|g)[-_][0-9a-f]{7,64})"
    + r"|(?![0-9]+$)[0-9a-f]{7,64})$",
    re.MULTILINE,
)
#: The same over a newline-joined list: one match per line, its groups say which kind.
_BUILD_TAG_LINES = re.compile(rf"^(?:{_BUILD_TAG_ALTERNATIVES}|.*)$", re.MULTILINE)

_memo: dict[str, str | None] = {}
_MEMO_LIMIT = 1_000_000


def build_tag_kind(tag: str) -> str | None:
    """Why ``tag`` names a build rather than a version, or None when it may be a version."""
    try:
        return _memo[tag]
    except KeyError:
        pass
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    kind = _memo[tag] = classify(tag)
    return kind


def clear_memo() -> None:
    _memo.clear()


def classify(tag: str) -> str | None:
    """``build_tag_kind`` without the memo."""
    m = _BUILD_TAG.fullmatch(tag)
    return _kind(tag, m.lastgroup if m is not None else None)


def classify_many(tags: list[str]) -> list[str | None]:
    """``classify`` of each tag, with one regex pass over the joined list."""
    joined = "\n".join(tags)
    if joined.count("\n") != len(tags) - 1 or not tags:
        return [classify(tag) for tag in tags]
    # lastgroup rather than findall's tuples: 10,000 tuples alive at once cost more in garbage
    # collection than the regex.
    return [
        _kind(tag, m.lastgroup)
        for tag, m in zip(tags, _BUILD_TAG_LINES.finditer(joined), strict=True)
    ]


def _kind(tag: str, matched: str | None) -> str | None:
    """The kind of ``tag``, given which pattern above matched all of it (None: none did)."""
    if tag.lower() in MUTABLE_TAGS:
        return f"'{tag}' is a mutable tag"
    if matched is None:
        return None
    if matched == "signature":
        return "a signature/attestation tag"
    # All-digit strings are numbers (build numbers, 20240105), not hashes.
    if matched == "bare" and tag.isdigit():
        return None
    return "a commit-hash tag"


def kind_follows_shape(shape: str) -> bool:
    """Whether every tag of ``shape`` (digits 1-9 written 1, see ``semver_shapes``) has the
    kind ``classify(shape)`` gives: the patterns above do not tell 1 from 9, and mutable tags
    have no digits, except for the literal ``sha256`` of signature tags."""
    return not shape.startswith("sha111-")


def classify_all(tags: list[str]) -> list[str | None]:
    """``classify`` of each tag, worked out once per shape: 100,000 tags of a busy repository
    have a few thousand shapes, and the first sight of them has a budget of 100 ms."""
    shaped = shapes(tags)
    distinct = list(set(shaped))
    by_shape = dict(zip(distinct, classify_many(distinct), strict=True))
    kinds = list(map(by_shape.__getitem__, shaped))
    odd = {shape for shape in distinct if not kind_follows_shape(shape)}
    if odd:
        for i in compress(range(len(tags)), map(odd.__contains__, shaped)):
            kinds[i] = classify(tags[i])
    return kinds
