"""Tag lists: ``tags/list`` pages, ``Link`` pagination, the cap, and tags that are not images.

Pure helpers; the client does the requests.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from imagebot.core.selection import parse_tag
from imagebot.registry.manifests import media_type
from imagebot.registry.settings import TagOrder

# cosign stores signatures, attestations and SBOMs as tags named after the image digest
# (sha256-<hex>.sig / .att / .sbom), and the OCI 1.1 referrers fallback uses the bare
# sha256-<hex>; none of them is an image anyone deploys.
_ARTIFACT_TAG = re.compile(r"^sha(256|384|512)-[0-9a-f]{64,128}(\.[A-Za-z0-9_-]+)*$")

_LINK = re.compile(r"\s*<([^>]*)>\s*((?:;\s*[^;,]*)*)")


class BadPage(ValueError):
    """A tags/list page that does not follow the distribution spec."""


def is_artifact_tag(tag: str) -> bool:
    """True for signature/attestation/SBOM tags (``sha256-….sig``), never images."""
    return bool(_ARTIFACT_TAG.match(tag))


def page_tags(content: bytes, content_type: str | None) -> list[str]:
    """The ``tags`` of a tags/list JSON document; ``null`` (an empty repository) is []."""
    kind = media_type(content_type)
    if kind and "json" not in kind:
        raise BadPage(f"expected JSON, got {kind}")
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise BadPage("not valid JSON") from None
    if not isinstance(body, dict):
        raise BadPage("tags/list is not a JSON object")
    tags = body.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadPage("tags/list 'tags' is not a list of strings")
    return tags


def next_link(header: str | None, current_url: str, *, registry: str | None = None) -> str | None:
    """The absolute URL of ``rel="next"`` in a ``Link`` header (RFC 8288), or None.

    Distribution sends a relative URL (resolved against ``current_url``, the page's own
    URL); some registries send an absolute one. A next page that is not on ``registry``
    (the configured registry's URL; default: ``current_url``) is refused: following it
    would send our credentials elsewhere. Comparing with the page's URL is not enough: a
    page reached through a redirect to another host would vouch for that host.
    """
    if not header or not header.strip():
        return None
    pos, found = 0, None
    while pos < len(header):
        m = _LINK.match(header, pos)
        if not m or not m.group(0).strip():
            raise BadPage(f"malformed Link header {header!r}")
        params = [p.strip() for p in m.group(2).split(";") if p.strip()]
        rels: list[str] = []
        for p in params:
            key, _, value = p.partition("=")
            if key.strip().lower() == "rel":
                rels.extend(value.strip().strip('"').lower().split())
        if "next" in rels and found is None:
            found = m.group(1).strip()
        pos = m.end()
        while pos < len(header) and header[pos] in ", \t":
            pos += 1
    if found is None:
        return None
    if not found:
        raise BadPage(f"empty next URL in Link header {header!r}")
    url: str = urljoin(current_url, found)
    here, there = urlsplit(registry or current_url), urlsplit(url)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        raise BadPage(f"Link header points to another server: {found!r}")
    return url


_RUNS = re.compile(r"\d+|\D+")


def newness(tag: str) -> tuple[Any, ...]:
    """How new a tag looks, for a cap over a list in no useful order: versions by version
    precedence (``v1.12.0`` above ``v1.9.0``, which text order reverses), above any other tag,
    which compare in natural order (digit runs as numbers)."""
    version = parse_tag(tag)
    if version is not None:
        return (1, version.key, tag)
    return (0, tuple((0, int(r), "") if r.isdigit() else (1, 0, r) for r in _RUNS.findall(tag)))


@dataclass
class TagCollector:
    """Collects tags across pages, keeping at most ``cap`` of them.

    Which ones a cap keeps depends on the registry's order: the first ``cap`` when it lists
    newest first (and then paging stops), the last ``cap`` when it lists oldest first, and
    for a lexical (or unknown) order the ``cap`` newest by ``newness`` — text order would keep
    ``v1.9.0`` over ``v1.12.0``. ``dropped`` names the tags a cap left out. Under the cap
    every tag is kept, in the order the registry lists them, and none is ranked.
    """

    cap: int
    order: TagOrder
    seen: int = 0
    stopped_early: bool = False
    """Set when paging stopped with pages left (the cap was full)."""
    dropped: list[str] = field(default_factory=list)
    _kept: deque[str] = field(init=False)
    _newest: list[tuple[tuple[Any, ...], str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._kept = deque(maxlen=self.cap)

    def add(self, tags: Iterable[str]) -> None:
        for tag in tags:
            if is_artifact_tag(tag):
                continue
            self.seen += 1
            if self.order == "lexical":
                if len(self._kept) < self.cap and not self._newest:
                    self._kept.append(tag)  # under the cap every tag is kept: no ranking
                    continue
                if not self._newest:  # the cap is reached: rank what is kept so far
                    self._newest = [(newness(t), t) for t in self._kept]
                    heapq.heapify(self._newest)
                    self._kept.clear()
                self.dropped.append(heapq.heappushpop(self._newest, (newness(tag), tag))[1])
            elif self.order == "newest-first" and len(self._kept) >= self.cap:
                self.dropped.append(tag)
            else:
                if len(self._kept) == self.cap:
                    self.dropped.append(self._kept[0])
                self._kept.append(tag)

    @property
    def capped(self) -> bool:
        return self.seen > self.cap or self.stopped_early

    @property
    def done(self) -> bool:
        """True when more pages cannot change the result."""
        return self.order == "newest-first" and self.seen >= self.cap

    @property
    def tags(self) -> list[str]:
        if self._newest:
            return [tag for _, tag in sorted(self._newest)]
        return list(self._kept)
