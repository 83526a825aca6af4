"""Pull-request mode: one branch and one pull request per environment, updated in place.

Each cycle the branch is rebuilt as exactly one imagebot commit on top of the base
branch's head, from the current plan, and force-pushed with a lease; everything decided is
read back from git and the forge, so a restart loses nothing.

A manual operation (``imagebot promote/hold/release/rollback``) goes through the same pull
request (:meth:`PullRequestPublisher.carry`): while it carries one, the cycle leaves it as it
is, and proposes again once it is merged or closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import anyio
import anyio.to_thread

from imagebot.core.plan import EnvironmentPlan, commit_message
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion import holds
from imagebot.core.promotion.record import PendingManual, PullRequestRecord, PullRequestState
from imagebot.errors import ForgeError, GitError
from imagebot.forge import Forge, PullRequest
from imagebot.git.push import delete_branch, push_branches
from imagebot.git.repo import CommitInfo, EnvRepo
from imagebot.git.signing import Signing
from imagebot.publisher import proposal
from imagebot.publisher.base import (
    ImageInfoReader,
    ImageInfos,
    Publication,
    log,
    source_links,
)
from imagebot.publisher.pending import PendingPushes, RemoteBranches, _BranchPush


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

    async def preview(self, repo: EnvRepo, plan: EnvironmentPlan) -> Publication:
        pr = await self.forge.find_open(head=self.branch, base=self.base)
        _, foreign, manual = await self._branch(repo, pr) if pr else (None, [], [])
        if pr is not None and foreign:
            return Publication(note=_human_owned(pr), pull_request=_record(pr, "human-edited"))
        if pr is not None and manual:
            return _carrying(pr, manual)
        if pr is not None:
            if not plan.changes and not plan.problems:
                return Publication(
                    note=f"would close pull request #{pr.number} ({pr.url}): {self.base}"
                    " already holds what it proposes",
                    pull_request=_record(pr),
                )
            update = f"would update pull request #{pr.number} ({pr.url}) from {self.branch}"
            return Publication(note=update if plan.changes else None, pull_request=_record(pr))
        declined, merged = await self._closed(plan)
        if not plan.changes:
            return Publication(pull_request=merged)
        if declined is not None:
            return Publication(
                note=f"would not propose these versions again: pull request #{declined.number}"
                f" ({declined.url}) was closed without merging",
                pull_request=_record(declined, "closed"),
            )
        return Publication(note=f"would open a pull request {self.branch} -> {self.base}")

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        pr = await self.forge.find_open(head=self.branch, base=self.base)
        base_head = repo.fetched or repo.head()  # the head the plan was made on
        head, foreign, manual = await self._branch(repo, pr)
        if pr is not None and foreign:
            return await self._stand_aside(pr, foreign)
        if pr is not None and manual:
            return _carrying(pr, manual)
        if pr is None:
            declined, merged = await self._closed(plan)
            if not plan.changes:
                return Publication(pull_request=merged)
            if declined is not None:
                self.log.info("proposal_declined_before", pull_request=declined.number)
                return Publication(
                    note=f"not proposing these versions again: pull request #{declined.number}"
                    f" ({declined.url}) was closed without merging; waiting for newer ones",
                    pull_request=_record(declined, "closed"),
                )
        elif not plan.changes:
            if not plan.problems:
                return await self._close_obsolete(repo, pr, head)
            return Publication()
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

        record = _record(pr) if pr is not None else None
        if sha == head:
            return Publication(note=await then(), pull_request=record)
        # Pushed with the other environments' branches of this clone, in one push, once the
        # last of them is done (engine._finish_publishing).
        self.pending.add_branch(_BranchPush(repo, self.branch, sha, head, self.loaded.name, then))
        return Publication(
            commit=sha, note=f"{self.branch} waits to be pushed", pull_request=record
        )

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

    async def _branch(
        self, repo: EnvRepo, pr: PullRequest | None
    ) -> tuple[str | None, list[str], list[PendingManual]]:
        """The branch's head and, with an open pull request, what is on it beside imagebot's
        own commit (see :meth:`_commits`)."""
        head = await anyio.to_thread.run_sync(self.branches.head, repo, self.branch)
        if pr is None or head is None:
            return head, [], []
        base_head = repo.fetched or repo.head()
        return head, *await anyio.to_thread.run_sync(self._commits, repo, base_head, head)

    def _commits(
        self, repo: EnvRepo, base_head: str, head: str
    ) -> tuple[list[str], list[PendingManual]]:
        """The branch's commits that imagebot did not write (``sha (email)``), and the manual
        operations on it, oldest first."""
        email = self.loaded.policy.repo.author.email
        mark = f"Imagebot-Environment: {self.loaded.name}"
        foreign: list[str] = []
        manual: list[PendingManual] = []
        for c in repo.commits_between(base_head, head):
            if (op := _manual(c)) is not None:
                manual.insert(0, op)
            elif c.committer_email != email or mark not in c.message:
                foreign.append(f"{c.sha[:12]} ({c.committer_email})")
        return foreign, manual

    async def carry(self, repo: EnvRepo, make: Callable[[str], str]) -> str:
        """Put a manual operation on the environment's branch, to be reviewed like any
        change: ``make(parent)`` commits it on top of the manual operations already there
        (else on the base's head: imagebot's own proposal is dropped, and made again once
        the pull request is merged or closed). Opens the pull request, or updates it to say
        what it carries; returns which, in words."""
        pr = await self.forge.find_open(head=self.branch, base=self.base)
        head, foreign, manual = await self._branch(repo, pr)
        if pr is not None and foreign:
            raise ForgeError(
                f"{_human_owned(pr)}: merge or close it first",
                forge=self.forge.kind, project=self.forge.project, action="add to pull request",
            )  # fmt: skip
        base_head = repo.fetched or repo.head()
        sha = await anyio.to_thread.run_sync(make, manual[-1].commit if manual else base_head)
        refused = await anyio.to_thread.run_sync(push_branches, repo, [(sha, self.branch, head)])
        if refused:
            raise GitError(f"{refused[self.branch].message}; nothing changed, run it again")
        manual = (await anyio.to_thread.run_sync(self._commits, repo, base_head, sha))[1]
        title = f"imagebot({self.loaded.name}): {manual[-1].what}"
        if len(manual) > 1:
            title += f" (and {len(manual) - 1} more)"
        listed = "\n".join(f"- {m.words()} ({m.commit[:12]})" for m in manual)
        body = (
            f"Manual operations on `{self.loaded.name}`; each takes effect once this pull"
            f" request is merged into `{self.base}`:\n\n{listed}\n\nimagebot leaves this pull"
            " request as it is until it is merged or closed, then proposes newer versions"
            " again.\n"
        )
        if pr is None:
            return await self._open(title, body)
        await self.forge.update(pr, title=title, body=body)
        self.log.info("pull_request_updated", number=pr.number)
        return f"updated pull request #{pr.number} ({pr.url})"

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
        return Publication(note=_human_owned(pr), pull_request=_record(pr, "human-edited"))

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
            refused = await anyio.to_thread.run_sync(
                lambda: delete_branch(repo, self.branch, expect=head)
            )
            if refused is not None and not refused.moved:
                raise GitError(refused.message)
            if refused is not None:  # the branch moved: read it again, plan again
                self.branches.forget(repo)
                self.pending.again(repo, self.loaded.name, refused.message)
                return Publication()
        self.log.info("pull_request_obsolete", number=pr.number)
        return Publication(
            note=f"closed obsolete pull request #{pr.number} ({pr.url})",
            pull_request=_record(pr, "closed"),
        )

    async def _closed(
        self, plan: EnvironmentPlan
    ) -> tuple[PullRequest | None, PullRequestRecord | None]:
        """With no open pull request, what the closed ones say (one forge call): the newest
        pull request closed unmerged (by a human) that proposed all the plan proposes (None
        when something in it was never declined); and the newest one, when it was merged."""
        closed = await self.forge.closed(head=self.branch, base=self.base)
        newest = max(closed, key=lambda pr: pr.number, default=None)
        merged = _record(newest) if newest is not None and newest.state == "merged" else None
        wanted = proposal.proposal(plan)
        declined = [
            pr for pr in closed if pr.state == "closed" and proposal.OBSOLETE_MARKER not in pr.body
        ]
        offered: set[tuple[str, str]] = set()
        for pr in declined:
            offered |= proposal.proposed_in(pr.body)
        if not wanted or not wanted <= offered:
            return None, merged
        return max(
            (pr for pr in declined if proposal.proposed_in(pr.body) & wanted),
            key=lambda pr: pr.number,
        ), merged

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


def _record(
    pr: PullRequest, state: PullRequestState | None = None, manual: Sequence[PendingManual] = ()
) -> PullRequestRecord:
    """The pull request as the decision record shows it (``state`` when imagebot knows more
    than the forge says: a human closed it, or pushed to its branch)."""
    shown: PullRequestState = state or ("draft" if pr.draft and pr.state == "open" else pr.state)
    return PullRequestRecord(pr.number, pr.url, shown, proposal.proposed_in(pr.body), tuple(manual))


def _manual(commit: CommitInfo) -> PendingManual | None:
    """The operation of a commit ``imagebot promote/hold/release/rollback`` made (read from
    its trailers); None for any other commit."""
    message = commit.message.strip()
    lines = message.rpartition("\n\n")[2].splitlines()
    if (op := holds.manual((k, v) for k, _, v in (line.partition(": ") for line in lines))) is None:
        return None
    subject = message.partition("\n")[0]
    what = subject.partition("): ")[2] or subject
    return PendingManual(op[0], op[1], what, commit.author, op[2], commit.sha)


def _carrying(pr: PullRequest, manual: list[PendingManual]) -> Publication:
    """The pull request carries manual operations: left as it is until merged or closed."""
    return Publication(
        note=f"pull request #{pr.number} ({pr.url}) carries manual operations"
        f" ({'; '.join(m.words() for m in manual)}); left as it is until it is merged or closed",
        pull_request=_record(pr, manual=manual),
    )


def _human_owned(pr: PullRequest) -> str:
    return (
        f"pull request #{pr.number} ({pr.url}) has commits imagebot did not write;"
        " left alone until it is merged or closed"
    )
