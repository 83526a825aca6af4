"""Tags that name a build, not a version: mutable tags, commit hashes, signatures.

They are never chosen unless an include pattern asks for them: Argo CD Image Updater's
newest-build strategy could pick ``latest`` when it tied with a release on creation time, and
lexical ordering puts ``sha-f00d`` above every ``1.x`` tag.
"""

from __future__ import annotations

import re

#: Tags that registries and CI conventionally move from build to build (any letter case).
#: docs/policies.md lists them; a test keeps the two in step.
_WORDS = "latest stable edge main master trunk develop development dev nightly canary next beta"
MUTABLE_TAGS = frozenset(f"{_WORDS} alpha rc head current release testing unstable rolling".split())

_BUILD_TAG = re.compile(
    # cosign/sigstore store signatures, attestations and SBOMs as sha256-<digest>.sig/.att/.sbom.
    r"(?P<signature>sha256-[0-9a-f]{64}(?:\.[a-z]+)?)"
    # sha-abc1234 (docker/metadata-action), git-/commit- prefixes, or a bare hex commit id.
    r"|(?P<hash>(?:sha|git|commit|rev|g)[-_][0-9a-f]{7,64})"
    r"|(?P<bare>[0-9a-f]{7,64})"
)


def build_tag_kind(tag: str) -> str | None:
    """Why ``tag`` names a build rather than a version, or None when it may be a version."""
    if "." in tag and not tag.startswith("sha256-"):
        return None  # the common case, a dotted version: no build tag has a dot
    if tag.lower() in MUTABLE_TAGS:
        return f"'{tag}' is a mutable tag"
    m = _BUILD_TAG.fullmatch(tag)
    if m is None or (m.lastgroup == "bare" and tag.isdigit()):  # 20240105 is a number
        return None
    return "a signature/attestation tag" if m.lastgroup == "signature" else "a commit-hash tag"
