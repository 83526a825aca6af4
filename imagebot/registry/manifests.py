"""Manifests: media types, digests, multi-arch indexes, platforms, annotations, config blobs.

Pure parsing and choosing; the client does the requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from imagebot.core.reference import DIGEST_RE

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

#: Indexes first: asked for a multi-arch tag, the registry must answer with the index (and
#: its digest), not pick a platform for us — what ``docker pull`` pins is the index digest.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
CREATED = "org.opencontainers.image.created"


class Platform(TypedDict, total=False):
    os: str
    architecture: str
    variant: str


class Descriptor(TypedDict, total=False):
    mediaType: str
    digest: str
    size: int
    platform: Platform
    annotations: dict[str, str]


class Manifest(TypedDict, total=False):
    schemaVersion: int
    mediaType: str
    config: Descriptor
    layers: list[Descriptor]
    manifests: list[Descriptor]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What imagebot learns about one tag beyond its name."""

    digest: str
    """The tag's digest: the index digest for a multi-arch image."""
    created: datetime | None = None
    source: str | None = None
    revision: str | None = None
    platform_digest: str | None = None
    """The chosen platform's manifest digest, for a multi-arch image."""
    platforms: tuple[str, ...] = ()
    """Every platform a multi-arch image offers (``linux/arm64/v8``)."""


class BadManifest(ValueError):
    """A manifest or config blob that is not what the OCI spec says."""


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def verify_digest(body: bytes, digest: str) -> None:
    algorithm, _, expected = digest.partition(":")
    try:
        actual = hashlib.new(algorithm, body).hexdigest()
    except ValueError:
        raise BadManifest(f"unsupported digest algorithm {algorithm!r}") from None
    if actual != expected:
        raise BadManifest(f"content does not match its digest {digest}")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_manifest(body: bytes, content_type: str | None) -> Manifest:
    """Decode and check a manifest; the media type comes from the body or the header."""
    header_type = media_type(content_type)
    if header_type.startswith("text/html"):
        raise BadManifest("got an HTML page instead of a manifest")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadManifest(
            f"manifest is not valid JSON ({header_type or 'no content type'})"
        ) from None
    if not isinstance(doc, dict):
        raise BadManifest("manifest is not a JSON object")
    kind = doc.get("mediaType") or header_type
    if kind not in INDEX_TYPES | IMAGE_TYPES:
        # OCI allows an index without mediaType; recognise it by shape.
        if isinstance(doc.get("manifests"), list):
            kind = OCI_INDEX
        elif isinstance(doc.get("config"), dict):
            kind = OCI_MANIFEST
        else:
            raise BadManifest(f"unsupported manifest type {kind or 'unknown'!r}")
    if doc.get("schemaVersion") != 2:
        raise BadManifest(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    if kind in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list) or not all(_descriptor_ok(d) for d in entries):
            raise BadManifest("index 'manifests' is not a list of descriptors")
    elif not _descriptor_ok(doc.get("config")):
        raise BadManifest("image manifest has no valid 'config' descriptor")
    annotations = doc.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise BadManifest("'annotations' is not a map of strings")
    doc["mediaType"] = kind
    manifest: Manifest = doc  # type: ignore[assignment]  # shape checked above
    return manifest


def _descriptor_ok(d: Any) -> bool:
    return (
        isinstance(d, dict)
        and isinstance(d.get("digest"), str)
        and bool(DIGEST_RE.match(d["digest"]))
    )


def is_index(manifest: Manifest) -> bool:
    return manifest.get("mediaType") in INDEX_TYPES


def platform_name(p: Platform) -> str:
    parts = [p.get("os", ""), p.get("architecture", "")]
    if p.get("variant"):
        parts.append(p.get("variant", ""))
    return "/".join(parts)


def _normalise_platform(text: str) -> tuple[str, str, str]:
    os_, _, rest = text.partition("/")
    arch, _, variant = rest.partition("/")
    # containerd's platforms.Normalize: arm64 means arm64/v8, amd64 has no variant.
    if arch == "arm64" and variant in ("", "v8"):
        variant = "v8"
    if arch == "amd64" and variant == "v1":
        variant = ""
    return os_, arch, variant


def platforms(index: Manifest) -> tuple[str, ...]:
    """The platforms an index offers; attestation entries (``unknown/unknown``) left out."""
    out = []
    for d in index.get("manifests", []):
        p = d.get("platform")
        if p and p.get("os") != "unknown":
            out.append(platform_name(p))
    return tuple(out)


def choose_platform(index: Manifest, wanted: str) -> Descriptor | None:
    """The index entry for ``wanted`` (``linux/arm64`` matches ``linux/arm64/v8``)."""
    want = _normalise_platform(wanted)
    for d in index.get("manifests", []):
        p = d.get("platform")
        if p and _normalise_platform(platform_name(p)) == want:
            return d
    return None


def merged_annotations(*manifests: Manifest | None) -> dict[str, str]:
    """Annotations of several manifests, later ones winning (image over index)."""
    out: dict[str, str] = {}
    for m in manifests:
        if m is not None:
            out.update(m.get("annotations") or {})
    return out


def parse_created(value: Any) -> datetime | None:
    """An RFC 3339 time as Go writes it (``2024-05-01T10:00:00.123456789Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Go writes up to nanoseconds; Python parses up to microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def config_created(body: bytes) -> datetime | None:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadManifest("config blob is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadManifest("config blob is not a JSON object")
    return parse_created(doc.get("created"))


def error_text(content: bytes, content_type: str | None) -> str:
    """The registry's own words in an error answer: ``{"errors": [{"code", "message"}]}``,
    or what kind of page it is, as ``": TEXT"`` to append to a message ("" if none)."""
    if media_type(content_type).startswith("text/html"):
        return " (an HTML error page)"
    try:
        body: Any = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = [
            ": ".join(str(e.get(k)) for k in ("code", "message") if e.get(k))
            for e in body["errors"]
            if isinstance(e, dict)
        ]
        text = "; ".join(p for p in parts if p)
        return f": {text}" if text else ""
    return ""
