"""The shapes every publisher shares, and the source links of a plan's changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import anyio

from imagebot import logs
from imagebot.core.plan import EnvironmentPlan
from imagebot.core.promotion.record import PullRequestRecord
from imagebot.errors import RegistryError
from imagebot.git.repo import EnvRepo
from imagebot.publisher import proposal
from imagebot.registry.manifests import ImageInfo

log = logs.get_logger("imagebot.publisher")


class ImageInfoReader(Protocol):
    """What publishing needs from a registry client: the source annotations of a tag."""

    async def image_info(
        self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
    ) -> ImageInfo: ...


@dataclass(frozen=True)
class Settled:
    """The end of a cycle's publishing: per environment, what failed and what it got."""

    failed: dict[str, str]
    notes: dict[str, str]


@dataclass(frozen=True)
class Publication:
    """What a publisher did (or, previewing, would do)."""

    commit: str | None = None  # the commit pushed, if one was
    note: str | None = None  # one line for the user: "opened pull request #3 (…)"
    pull_request: PullRequestRecord | None = None  # the environment's, when it has one


class Publisher(Protocol):
    async def preview(self, repo: EnvRepo, plan: EnvironmentPlan) -> Publication:
        """What :meth:`publish` would do with ``plan``; reads, never writes."""
        ...

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        """Publish ``plan`` (computed on ``repo``'s fetched head): commit now, push when the
        clone's last environment is done (:meth:`Publishers.settle`), which also publishes
        again, re-planned, an environment whose plan went stale."""
        ...


#: (repository, tag or digest) -> what the registry said, None if it could not say
ImageInfos = dict[tuple[str, str], ImageInfo | None]


async def source_links(
    images: ImageInfoReader, plan: EnvironmentPlan, *, infos: ImageInfos | None = None
) -> dict[proposal.LinkKey, str]:
    """Links to the source change of each transition whose new image carries the
    ``org.opencontainers.image.source`` and ``.revision`` annotations. ``infos`` remembers
    answers across environments of one cycle, which mostly run the same images."""
    infos = {} if infos is None else infos

    async def one(repository: str, reference: str) -> None:
        try:
            infos[(repository, reference)] = await images.image_info(repository, reference)
        except RegistryError as exc:
            log.info("source_unknown", repository=repository, reference=reference, error=str(exc))
            infos[(repository, reference)] = None

    wanted: dict[proposal.LinkKey, tuple[str, str | None, str]] = {}
    for t in proposal.transitions(plan):
        first = t.changes[0]
        new_ref = first.new_digest or first.new_tag
        if new_ref is not None:
            wanted[t.key] = (t.repository, first.old_digest or first.old_tag, new_ref)
    async with anyio.create_task_group() as tg:
        for repository, old_ref, new_ref in set(wanted.values()):
            for ref in (old_ref, new_ref):
                if ref is not None and (repository, ref) not in infos:
                    infos[(repository, ref)] = None
                    tg.start_soon(one, repository, ref)
    links: dict[proposal.LinkKey, str] = {}
    for key, (repository, old_ref, new_ref) in wanted.items():
        new = infos.get((repository, new_ref))
        if new is None or not new.source or not new.revision:
            continue
        old = infos.get((repository, old_ref)) if old_ref else None
        old_revision = old.revision if old is not None and old.source == new.source else None
        links[key] = proposal.compare_url(new.source, old_revision, new.revision)
    return links
