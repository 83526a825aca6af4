"""Commit mode: a commit per environment on ``repo.branch``."""

from __future__ import annotations

from datetime import datetime

import anyio
import anyio.to_thread

from imagebot.core.plan import EnvironmentPlan, commit_message
from imagebot.core.policy import LoadedPolicy
from imagebot.git.repo import EnvRepo
from imagebot.git.signing import Signing
from imagebot.publisher.base import (
    ImageInfoReader,
    ImageInfos,
    Publication,
    source_links,
)
from imagebot.publisher.pending import PendingPushes


class CommitPublisher:
    """``publish: commit``: one commit on ``repo.branch``, pushed fast-forward with the other
    environments' commits on that branch once the last of them is done
    (:class:`PendingPushes`)."""

    def __init__(
        self,
        loaded: LoadedPolicy,
        signing: Signing | None,
        pending: PendingPushes,
        infos: ImageInfos,
    ) -> None:
        self.loaded = loaded
        self.signing = signing
        self.pending = pending
        self.infos = infos

    async def preview(self, repo: EnvRepo, plan: EnvironmentPlan) -> Publication:
        return Publication()

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        if not plan.changes:
            return Publication()
        paths = set(plan.new_files)
        if self.pending.touches(repo, paths):
            # An earlier environment's waiting commit changed these files: this plan is
            # stale. Once that commit is pushed, this environment is read and planned again.
            why = "an earlier environment's waiting commit changed the same files"
            self.pending.again(repo, self.loaded.name, why)
            return Publication()
        links = await source_links(images, plan, infos=self.infos)
        author = self.loaded.policy.repo.author

        def commit() -> str:
            sha = repo.commit(
                {path: text.encode("utf-8") for path, text in plan.new_files.items()},
                message=commit_message(plan, links=links),
                author_name=author.name,
                author_email=author.email,
                when=when,
                parent_sha=self.pending.parent(repo),
                signing=self.signing,
            )
            self.pending.add(repo, sha, self.loaded.name, paths)
            return sha

        return Publication(commit=await anyio.to_thread.run_sync(commit))
