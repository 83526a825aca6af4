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
from collections.abc import Awaitable, Callable, Mapping
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
from imagebot.errors import ForgeError, GitError, ImagebotError, RegistryError
from imagebot.forge import Forge, PullRequest, connect_forge
from imagebot.forge.base import Clock, Sleep
from imagebot.gitrepo import EnvRepo, PushRejected, Signing
from imagebot.registry.manifests import ImageInfo

log = logs.get_logger("imagebot.publisher")


class ImageInfoReader(Protocol):
    """What publishing needs from a registry client: the source annotations of a tag."""

    async def image_info(
        self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
    ) -> ImageInfo: ...


@dataclass(frozen=True)
class Flushed:
    """The end of a cycle's publishing: what failed, and what each pushed environment got."""

    failed: dict[str, ImagebotError]
    notes: dict[str, str]


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


@dataclass
class _Chain:
    repo: EnvRepo
    head: str
    environments: list[str]
    paths: set[str]


@dataclass
class _BranchPush:
    repo: EnvRepo
    branch: str
    sha: str
    expect: str | None
    environment: str
    then: Callable[[], Awaitable[str]]  # what to do once pushed: open or update the PR


class PendingPushes:
    """Commit-mode commits made this cycle, chained per repo and branch, pushed at once.

    Environments that share a repo and branch (one directory each, say) each get their own
    commit — its own message and trailers — on top of the previous one, and the branch is
    pushed once at the end of the cycle: 50 environments cost one push, not 50. A push that
    fails fails every environment in its chain and leaves the remote as it was.
    """

    def __init__(self) -> None:
        self._chains: dict[tuple[str, str], _Chain] = {}
        self._branches: list[_BranchPush] = []

    def add_branch(self, push: _BranchPush) -> None:
        """Pull-request mode: a branch to force-push (with a lease), then ``push.then``."""
        self._branches.append(push)

    def push_branches(self) -> tuple[list[_BranchPush], dict[str, GitError]]:
        """One ``git push`` per repo for every waiting branch: (pushed, failed by env)."""
        by_repo: dict[str, list[_BranchPush]] = {}
        for push in self._branches:
            by_repo.setdefault(str(push.repo.path), []).append(push)
        self._branches = []
        pushed: list[_BranchPush] = []
        failed: dict[str, GitError] = {}
        for pushes in by_repo.values():
            errors = pushes[0].repo.push_branches([(p.sha, p.branch, p.expect) for p in pushes])
            for p in pushes:
                if p.branch in errors:
                    failed[p.environment] = errors[p.branch]
                else:
                    pushed.append(p)
                    log.info("branch_pushed", environment=p.environment, branch=p.branch,
                             commit=p.sha)  # fmt: skip
        return pushed, failed

    def parent(self, repo: EnvRepo) -> str | None:
        chain = self._chains.get(_chain_key(repo))
        return chain.head if chain is not None else None

    def touches(self, repo: EnvRepo, paths: set[str]) -> bool:
        """Whether a waiting commit changed any of ``paths`` (its plan would be stale)."""
        chain = self._chains.get(_chain_key(repo))
        return chain is not None and bool(chain.paths & paths)

    def add(self, repo: EnvRepo, sha: str, environment: str, paths: set[str]) -> None:
        chain = self._chains.setdefault(_chain_key(repo), _Chain(repo, sha, [], set()))
        chain.repo, chain.head = repo, sha
        chain.environments.append(environment)
        chain.paths |= paths

    def push(self, repo: EnvRepo) -> dict[str, GitError]:
        chain = self._chains.pop(_chain_key(repo), None)
        return self._push(chain) if chain is not None else {}

    def push_all(self) -> dict[str, GitError]:
        """Push every chain; the environments whose push failed, with the error."""
        failed: dict[str, GitError] = {}
        chains, self._chains = list(self._chains.values()), {}
        for chain in chains:
            failed.update(self._push(chain))
        return failed

    def _push(self, chain: _Chain) -> dict[str, GitError]:
        try:
            chain.repo.push(chain.head)
        except GitError as exc:
            return dict.fromkeys(chain.environments, exc)
        log.info("pushed", commit=chain.head, branch=chain.repo.branch,
                 environments=chain.environments)  # fmt: skip
        return {}


def _chain_key(repo: EnvRepo) -> tuple[str, str]:
    return (str(repo.path), repo.branch)


class RemoteBranches:
    """The remote's branches, listed once per repo per cycle instead of once per environment;
    a branch's commits are fetched only when the clone does not hold them yet."""

    def __init__(self) -> None:
        self._heads: dict[str, dict[str, str]] = {}

    def head(self, repo: EnvRepo, branch: str) -> str | None:
        key = str(repo.path)
        if key not in self._heads:
            self._heads[key] = repo.remote_branches()
        sha = self._heads[key].get(branch)
        if sha is not None and not repo.has_commit(sha):
            repo.fetch_ref(branch)
        return sha

    def forget(self, repo: EnvRepo) -> None:
        """Someone else moved a branch: list again next time."""
        self._heads.pop(str(repo.path), None)


class CommitPublisher:
    """``publish: commit``: one commit on ``repo.branch``, pushed fast-forward with the other
    environments' commits on that branch at the end of the cycle (:class:`PendingPushes`)."""

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

    async def preview(self, plan: EnvironmentPlan) -> Publication:
        return Publication()

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        if not plan.changes:
            return Publication()
        paths = set(plan.new_files)
        if self.pending.touches(repo, paths):
            # An earlier environment's waiting commit changed these files: push it, and
            # have the engine re-read and re-plan this one on top of it.
            failed = await anyio.to_thread.run_sync(self.pending.push, repo)
            if failed:
                raise next(iter(failed.values()))
            raise PushRejected(f"{self.loaded.name}: files changed by an earlier environment")
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


class PullRequestPublisher:
    """``publish: {mode: pull-request}``: one branch and one pull request per environment."""

    def __init__(
        self,
        loaded: LoadedPolicy,
        forge: Forge,
        signing: Signing | None,
        *,
        infos: ImageInfos,
        pending: PendingPushes,
        branches: RemoteBranches,
    ) -> None:
        self.loaded = loaded
        self.forge = forge
        self.signing = signing
        self.infos = infos
        self.pending = pending
        self.branches = branches
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
        declined = await self._declined_by(proposal.proposal(plan))
        if declined is not None:
            return Publication(
                note=f"would not propose these versions again: pull request #{declined.number}"
                f" ({declined.url}) was closed without merging"
            )
        return Publication(note=f"would open a pull request {self.branch} -> {self.base}")

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        pr = await self.forge.find_open(head=self.branch, base=self.base)
        base_head = repo.head()
        head = await anyio.to_thread.run_sync(self.branches.head, repo, self.branch)
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
        links = await source_links(images, plan, infos=self.infos)
        title = proposal.title(self.spec, plan, branch=self.branch, base=self.base)
        body = proposal.body(self.spec, plan, branch=self.branch, base=self.base, links=links)
        message = commit_message(plan, links=links)
        sha = await anyio.to_thread.run_sync(
            self._rebuild, repo, plan, message, when, base_head, head
        )

        async def then() -> str:
            """Once the branch holds the commit: open the PR, or bring it up to date."""
            if pr is None:
                return await self._open(title, body)
            if (pr.title, pr.body) != (title, body):
                await self.forge.update(pr, title=title, body=body)
                self.log.info("pull_request_updated", number=pr.number)
                return f"updated pull request #{pr.number} ({pr.url})"
            note = f"pull request #{pr.number} ({pr.url}) is up to date"
            return f"rebuilt {self.branch} on {self.base}; {note}" if sha != head else note

        if sha == head:
            return Publication(note=await then())
        # Pushed with the other environments' branches at the end of the cycle (one push).
        self.pending.add_branch(_BranchPush(repo, self.branch, sha, head, self.loaded.name, then))
        return Publication(commit=sha, note=f"{self.branch} waits to be pushed")

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
            try:
                await anyio.to_thread.run_sync(lambda: repo.delete_branch(self.branch, expect=head))
            except PushRejected:
                self.branches.forget(repo)
                raise
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
        self.start_cycle()

    def start_cycle(self) -> None:
        """Forget what the previous cycle learnt (branches, image annotations) and left."""
        self.pending = PendingPushes()
        self.infos: ImageInfos = {}
        self.branches = RemoteBranches()

    async def flush(self) -> Flushed:
        """Push what waits from this cycle (commit chains, pull-request branches), then open
        or update the pull requests of the branches pushed."""
        failed: dict[str, ImagebotError] = {}
        failed.update(await anyio.to_thread.run_sync(self.pending.push_all))
        pushed, branch_failures = await anyio.to_thread.run_sync(self.pending.push_branches)
        failed.update(branch_failures)
        if branch_failures:
            self.branches = RemoteBranches()  # a branch moved under us: list them again
        notes: dict[str, str] = {}
        for push in pushed:
            try:
                notes[push.environment] = await push.then()
            except ForgeError as exc:
                log.error("publish_failed", environment=push.environment, error=str(exc))
                failed[push.environment] = exc
        return Flushed(failed=failed, notes=notes)

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
        forge = self.forge_for(loaded)
        if policy.publish.mode == "commit" or forge is None:
            return CommitPublisher(loaded, signing, self.pending, self.infos)
        return PullRequestPublisher(
            loaded,
            forge,
            signing,
            infos=self.infos,
            pending=self.pending,
            branches=self.branches,
        )

    def forge_for(self, loaded: LoadedPolicy) -> Forge | None:
        """The forge client of an environment whose policy names one (e.g. to read commit
        statuses); None when it names none. ForgeError when the token is missing."""
        policy = loaded.policy
        forge = policy.publish.forge
        if forge is None:
            return None
        if self._client is None:
            raise RuntimeError("Publishers used outside 'async with'")
        url = config.resolve_repo_url(policy.repo.url, loaded.source)
        project = forge.project or derive_project(url) or ""
        return connect_forge(
            forge.type,
            client=self._client,
            api_url=forge.api_url,
            project=project,
            token=self._token(loaded, project),
            sleep=self.sleep,
            clock=self.clock,
        )

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
