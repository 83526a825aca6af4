"""Publishing an environment's plan: a commit on its branch, or one pull request.

The engine asks :class:`Publishers` for the :class:`Publisher` of an environment (chosen by
the policy's ``publish.mode``) and hands it the plan; it never knows which way, or which
forge, a change leaves by.

Pull-request mode keeps one branch (``imagebot/<environment>``) and one pull request per
environment. Each cycle the branch is rebuilt as exactly one imagebot commit on top of the
base branch's head, from the current plan, and force-pushed with a lease; everything it
decides is read back from git and the forge, so a restart loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

import anyio
import anyio.to_thread
import httpx

from imagebot import config, logs
from imagebot.core import proposal
from imagebot.core.plan import EnvironmentPlan, commit_message
from imagebot.core.policy import LoadedPolicy
from imagebot.core.publish_policy import derive_project
from imagebot.errors import ForgeError, RegistryError
from imagebot.forge import Forge, PullRequest, connect_forge
from imagebot.forge.base import Clock, Sleep
from imagebot.gitrepo import EnvRepo, Signing
from imagebot.registry.manifests import ImageInfo

log = logs.get_logger("imagebot.publisher")


class ImageInfoReader(Protocol):
    """What publishing needs from a registry client: the source annotations of a tag."""

    async def image_info(
        self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
    ) -> ImageInfo: ...


@dataclass(frozen=True)
class Publication:
    """What a publisher did (or, previewing, would do)."""

    commit: str | None = None  # the commit pushed, if one was
    note: str | None = None  # one line for the user: "opened pull request #3 (…)"


class Publisher(Protocol):
    async def preview(self, plan: EnvironmentPlan) -> Publication:
        """What :meth:`publish` would do with ``plan``; reads, never writes."""
        ...

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        """Publish ``plan`` (computed on ``repo``'s fetched head). A push that lost a race
        raises PushRejected: the caller re-reads the repo, re-plans and calls again."""
        ...


async def source_links(
    images: ImageInfoReader, plan: EnvironmentPlan
) -> dict[proposal.LinkKey, str]:
    """Links to the source change of each transition whose new image carries the
    ``org.opencontainers.image.source`` and ``.revision`` annotations."""
    infos: dict[tuple[str, str], ImageInfo | None] = {}

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


class CommitPublisher:
    """``publish: commit``: one commit on ``repo.branch``, pushed fast-forward."""

    def __init__(self, loaded: LoadedPolicy, signing: Signing | None) -> None:
        self.loaded = loaded
        self.signing = signing

    async def preview(self, plan: EnvironmentPlan) -> Publication:
        return Publication()

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        if not plan.changes:
            return Publication()
        links = await source_links(images, plan)
        author = self.loaded.policy.repo.author

        def commit_and_push() -> str:
            sha = repo.commit(
                {path: text.encode("utf-8") for path, text in plan.new_files.items()},
                message=commit_message(plan, links=links),
                author_name=author.name,
                author_email=author.email,
                when=when,
                signing=self.signing,
            )
            repo.push(sha)
            return sha

        return Publication(commit=await anyio.to_thread.run_sync(commit_and_push))


class PullRequestPublisher:
    """``publish: {mode: pull-request}``: one branch and one pull request per environment."""

    def __init__(self, loaded: LoadedPolicy, forge: Forge, signing: Signing | None) -> None:
        self.loaded = loaded
        self.forge = forge
        self.signing = signing
        self.spec = loaded.policy.publish
        self.branch = self.spec.branch_for(loaded.name)
        self.base = loaded.policy.repo.branch
        self.log = log.bind(
            environment=loaded.name, forge=forge.kind, project=forge.project, branch=self.branch
        )

    async def preview(self, plan: EnvironmentPlan) -> Publication:
        pr = await self.forge.find_open(head=self.branch, base=self.base)
        if not plan.changes:
            if pr is not None and not plan.problems:
                return Publication(
                    note=f"would close pull request #{pr.number} ({pr.url}): {self.base}"
                    " already holds what it proposes"
                )
            return Publication()
        if pr is not None:
            return Publication(
                note=f"would update pull request #{pr.number} ({pr.url}) from {self.branch}"
            )
        return Publication(note=f"would open a pull request {self.branch} -> {self.base}")

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        pr = await self.forge.find_open(head=self.branch, base=self.base)
        base_head = repo.head()
        head = await anyio.to_thread.run_sync(repo.fetch_branch, self.branch)
        if pr is not None and head is not None:
            foreign = await anyio.to_thread.run_sync(self._foreign_commits, repo, base_head, head)
            if foreign:
                return await self._stand_aside(pr, foreign)
        if not plan.changes:
            if pr is not None and not plan.problems:
                return await self._close_obsolete(repo, pr, head)
            return Publication()
        if pr is None:
            declined = await self._declined_by(proposal.proposal(plan))
            if declined is not None:
                self.log.info("proposal_declined_before", pull_request=declined.number)
                return Publication(
                    note=f"not proposing these versions again: pull request #{declined.number}"
                    f" ({declined.url}) was closed without merging; waiting for newer ones"
                )
        links = await source_links(images, plan)
        title = proposal.title(self.spec, plan, branch=self.branch, base=self.base)
        body = proposal.body(self.spec, plan, branch=self.branch, base=self.base, links=links)
        message = commit_message(plan, links=links)
        sha = await anyio.to_thread.run_sync(
            self._rebuild, repo, plan, message, when, base_head, head
        )
        pushed = None
        if sha != head:
            await anyio.to_thread.run_sync(lambda: repo.push_branch(sha, self.branch, expect=head))
            pushed = sha
            self.log.info("branch_pushed", commit=sha, base=base_head)
        if pr is None:
            return Publication(commit=pushed, note=await self._open(title, body))
        if (pr.title, pr.body) != (title, body):
            await self.forge.update(pr, title=title, body=body)
            self.log.info("pull_request_updated", number=pr.number)
            return Publication(commit=pushed, note=f"updated pull request #{pr.number} ({pr.url})")
        note = f"pull request #{pr.number} ({pr.url}) is up to date"
        if pushed:
            note = f"rebuilt {self.branch} on {self.base}; " + note
        return Publication(commit=pushed, note=note)

    def _rebuild(
        self,
        repo: EnvRepo,
        plan: EnvironmentPlan,
        message: str,
        when: datetime,
        base_head: str,
        head: str | None,
    ) -> str:
        """The one imagebot commit on top of ``base_head``; the branch's current commit when
        that already is it (same parent, tree and message), so nothing is pushed."""
        author = self.loaded.policy.repo.author
        sha = repo.commit(
            {path: text.encode("utf-8") for path, text in plan.new_files.items()},
            message=message,
            author_name=author.name,
            author_email=author.email,
            when=when,
            parent_sha=base_head,
            signing=self.signing,
        )
        if head is not None:
            new, old = repo.describe(sha), repo.describe(head)
            if (new.tree, new.parents, new.message) == (old.tree, old.parents, old.message):
                return head
        return sha

    def _foreign_commits(self, repo: EnvRepo, base_head: str, head: str) -> list[str]:
        """Commits on the branch that imagebot did not write: ``sha (email)``."""
        email = self.loaded.policy.repo.author.email
        mark = f"Imagebot-Environment: {self.loaded.name}"
        return [
            f"{c.sha[:12]} ({c.committer_email})"
            for c in repo.commits_between(base_head, head)
            if c.committer_email != email or mark not in c.message
        ]

    async def _stand_aside(self, pr: PullRequest, foreign: list[str]) -> Publication:
        """A human pushed to the branch: say so once on the pull request, change nothing."""
        comments = await self.forge.comments(pr)
        if not any(c.startswith(proposal.HUMAN_COMMIT_MARKER) for c in comments):
            await self.forge.comment(
                pr,
                f"{proposal.HUMAN_COMMIT_MARKER}\nimagebot stopped updating this pull request:"
                f" `{self.branch}` has commits imagebot did not write ({', '.join(foreign)})."
                " It will not overwrite them. Once this pull request is merged or closed,"
                " imagebot proposes newer versions in a new one.",
            )
            self.log.warning("human_commits", number=pr.number, commits=foreign)
        return Publication(
            note=f"pull request #{pr.number} ({pr.url}) has commits imagebot did not write;"
            " left alone until it is merged or closed"
        )

    async def _close_obsolete(
        self, repo: EnvRepo, pr: PullRequest, head: str | None
    ) -> Publication:
        await self.forge.comment(
            pr,
            f"`{self.base}` already holds every version this pull request proposed;"
            " imagebot closes it and deletes its branch.",
        )
        await self.forge.close(pr, body=pr.body.rstrip("\n") + "\n\n" + proposal.OBSOLETE_MARKER)
        if head is not None:
            await anyio.to_thread.run_sync(lambda: repo.delete_branch(self.branch, expect=head))
        self.log.info("pull_request_obsolete", number=pr.number)
        return Publication(note=f"closed obsolete pull request #{pr.number} ({pr.url})")

    async def _declined_by(self, wanted: frozenset[tuple[str, str]]) -> PullRequest | None:
        """The newest pull request closed unmerged (by a human) that proposed all of
        ``wanted``; None when something in ``wanted`` was never declined."""
        declined = [
            pr
            for pr in await self.forge.closed(head=self.branch, base=self.base)
            if pr.state == "closed" and proposal.OBSOLETE_MARKER not in pr.body
        ]
        offered: set[tuple[str, str]] = set()
        for pr in declined:
            offered |= proposal.proposed_in(pr.body)
        if not wanted or not wanted <= offered:
            return None
        return max(
            (pr for pr in declined if proposal.proposed_in(pr.body) & wanted),
            key=lambda pr: pr.number,
        )

    async def _open(self, title: str, body: str) -> str:
        pr = await self.forge.open(
            head=self.branch, base=self.base, title=title, body=body, draft=self.spec.draft
        )
        self.log.info("pull_request_opened", number=pr.number, url=pr.url)
        if self.spec.labels:
            await self.forge.add_labels(pr, self.spec.labels)
        if self.spec.reviewers:
            await self.forge.request_reviewers(pr, self.spec.reviewers)
        if self.spec.automerge:
            await self.forge.enable_automerge(pr)
        return f"opened pull request #{pr.number} ({pr.url})"


class Publishers:
    """Builds each environment's publisher; owns the HTTP client its forges share.

    ``environ`` is where ``token_env`` is looked up (the process environment by default);
    ``sleep`` and ``clock`` serve rate-limit waits, so tests hand in fake time.
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.environ = dict(os.environ) if environ is None else dict(environ)
        self._client = client
        self._own_client = client is None
        self.sleep = sleep
        self.clock = clock

    async def __aenter__(self) -> Publishers:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30.0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def for_policy(self, loaded: LoadedPolicy) -> Publisher:
        """The environment's publisher; ForgeError when its forge cannot be set up (no
        token), which stops that environment only."""
        policy = loaded.policy
        signing = None
        if policy.signing is not None:
            key = _path_beside(policy.signing.key_file, loaded.source)
            signing = Signing(format=policy.signing.format, key_file=key)
        spec = policy.publish
        if spec.mode == "commit" or spec.forge is None:
            return CommitPublisher(loaded, signing)
        forge = spec.forge
        url = config.resolve_repo_url(policy.repo.url, loaded.source)
        project = forge.project or derive_project(url) or ""
        if self._client is None:
            raise RuntimeError("Publishers used outside 'async with'")
        client = connect_forge(
            forge.type,
            client=self._client,
            api_url=forge.api_url,
            project=project,
            token=self._token(loaded, project),
            sleep=self.sleep,
            clock=self.clock,
        )
        return PullRequestPublisher(loaded, client, signing)

    def _token(self, loaded: LoadedPolicy, project: str) -> str:
        forge = loaded.policy.publish.forge
        assert forge is not None

        def error(message: str) -> ForgeError:
            return ForgeError(message, forge=forge.type, project=project, action="read the token")

        if forge.token_env is not None:
            value = self.environ.get(forge.token_env)
            if not value:
                raise error(f"environment variable {forge.token_env} is not set ({loaded.source})")
            return value
        assert forge.token_file is not None
        path = _path_beside(forge.token_file, loaded.source)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise error(f"cannot read token file {path}: {reason}") from None
        if not value:
            raise error(f"token file {path} is empty")
        return value


def _path_beside(raw: str, policy_file: str) -> Path:
    """A configured file: ``~`` expanded, a relative path taken from the policy's directory."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path(policy_file).resolve().parent / path
