"""The registry side of a cycle: list each watched repository's tags (with first-seen and
build times where a rule needs them) and fetch the digests a plan asks for.

A registry failure is recorded in the repository's scan (or logged, for one digest), never
raised: one bad registry holds up only the environments that use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence, Set
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import anyio

from imagebot import logs
from imagebot.core.selection import ImageScan, TagInfo
from imagebot.errors import RegistryError
from imagebot.registry.manifests import ImageInfo

log = logs.get_logger("imagebot.registry.scan")


class Registry(Protocol):
    """What the engine needs from a registry client (imagebot.registry.RegistryClient)."""

    async def list_tags(self, repository: str) -> list[str]: ...

    async def digest(self, repository: str, tag: str) -> str: ...

    async def first_seen(self, repository: str) -> dict[str, datetime]: ...

    async def image_info(
        self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
    ) -> ImageInfo: ...

    async def fetch(self, repository: str, path: str, *, accept: str) -> bytes | None: ...


async def scan_repositories(
    registry: Registry, repositories: Sequence[str], *, with_created: Set[str] = frozenset()
) -> dict[str, ImageScan]:
    """List the tags of every repository concurrently and, for repositories in
    ``with_created``, when imagebot first saw each tag and each image's build time (for
    min_age and newest-build). A failure is recorded in the scan, never raised."""
    scans: dict[str, ImageScan] = {}

    async def one(repository: str) -> None:
        try:
            tags = await registry.list_tags(repository)
            # First-seen times and build times only count for min_age and newest-build.
            seen = await registry.first_seen(repository) if repository in with_created else {}
            infos: dict[str, ImageInfo] = {}
            if repository in with_created:
                async with anyio.create_task_group() as tg:
                    for tag in tags:
                        tg.start_soon(_image_info, registry, repository, tag, infos)
        except RegistryError as exc:
            log.error("scan_failed", repository=repository, error=str(exc))
            scans[repository] = ImageScan(error=str(exc))
            return
        log.info("tags_listed", repository=repository, count=len(tags))
        scans[repository] = ImageScan(
            tags=tuple(
                TagInfo(
                    name=t,
                    first_seen=seen.get(t),
                    created=infos[t].created if t in infos else None,
                    digest=infos[t].digest if t in infos else None,
                )
                for t in tags
            )
            if seen or infos
            else tuple(map(TagInfo, tags)),  # names only: the common case, made cheaply
            digests={t: i.digest for t, i in infos.items() if i.digest},
            fingerprint=fingerprint(tags),
        )

    async with anyio.create_task_group() as tg:
        for repository in repositories:
            tg.start_soon(one, repository)
    return scans


def fingerprint(tags: Sequence[str]) -> str:
    """A hash of the set of tags, whatever order the registry lists them in."""
    return hashlib.blake2b("\n".join(sorted(tags)).encode(), digest_size=16).hexdigest()


async def _image_info(
    registry: Registry, repository: str, tag: str, out: dict[str, ImageInfo]
) -> None:
    try:
        out[tag] = await registry.image_info(repository, tag, created=True)
    except RegistryError as exc:
        # One unreadable tag is skipped by selection ("no creation time"), not fatal.
        log.warning("image_info_failed", repository=repository, tag=tag, error=str(exc))


async def resolve_digests(
    registry: Registry, needed: Set[tuple[str, str]], scans: dict[str, ImageScan]
) -> bool:
    """Fetch the digests of ``needed`` (repository, tag) pairs; True if any was added."""
    if not needed:
        return False
    found: dict[tuple[str, str], str] = {}

    async def one(repository: str, tag: str) -> None:
        try:
            found[(repository, tag)] = await registry.digest(repository, tag)
        except RegistryError as exc:
            log.error("digest_failed", repository=repository, tag=tag, error=str(exc))

    async with anyio.create_task_group() as tg:
        for repository, tag in sorted(needed):
            tg.start_soon(one, repository, tag)
    for (repository, tag), digest in found.items():
        scan = scans[repository]
        scans[repository] = replace(scan, digests={**scan.digests, tag: digest})
    return bool(found)
