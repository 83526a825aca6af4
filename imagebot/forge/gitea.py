"""Gitea and Forgejo pull requests through the API v1 (``/api/v1``)."""

from __future__ import annotations

from typing import TypedDict, cast

from imagebot.forge.base import CommitStatus, PullRequest, StatusState, statuses
from imagebot.forge.repos import RepoPulls, pull

#: Gitea marks a work-in-progress (draft) pull request by this title prefix.
DRAFT_PREFIX = "WIP: "


class _Branch(TypedDict):
    ref: str


class GiteaPull(TypedDict, total=False):
    number: int
    html_url: str
    title: str
    body: str | None
    state: str  # open | closed
    merged: bool
    draft: bool
    head: _Branch
    base: _Branch


class GiteaComment(TypedDict, total=False):
    id: int
    body: str


class GiteaLabel(TypedDict, total=False):
    id: int
    name: str


_STATUS: dict[str, StatusState] = {
    "success": "success",
    "failure": "failure",
    "warning": "failure",
    "error": "error",
}


class Gitea(RepoPulls):
    """One Gitea or Forgejo repository (``owner/name``)."""

    kind = "gitea"

    async def _pulls(self, state: str, head: str, base: str, *, action: str) -> list[PullRequest]:
        # The list endpoint filters by state only; head and base are matched here.
        items = await self.http.pages(
            f"{self._repo}/pulls", action=action, params={"state": state, "limit": 50}
        )
        pulls = [_pull(cast(GiteaPull, i)) for i in items]
        return [p for p in pulls if p.head == head and p.base == base]

    async def open(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        data = await self.http.json(
            "POST",
            f"{self._repo}/pulls",
            action=f"open pull request {head} -> {base}",
            json={
                "head": head,
                "base": base,
                "title": (DRAFT_PREFIX if draft else "") + title,
                "body": body,
            },
        )
        return _pull(cast(GiteaPull, data))

    async def update(self, pr: PullRequest, *, title: str, body: str) -> PullRequest:
        data = await self.http.json(
            "PATCH",
            f"{self._repo}/pulls/{pr.number}",
            action=f"update pull request #{pr.number}",
            json={"title": (DRAFT_PREFIX if pr.draft else "") + title, "body": body},
        )
        return _pull(cast(GiteaPull, data))

    async def comments(self, pr: PullRequest) -> list[str]:
        items = await self.http.pages(
            f"{self._repo}/issues/{pr.number}/comments",
            action=f"list comments of pull request #{pr.number}",
        )
        return [str(cast(GiteaComment, i).get("body") or "") for i in items]

    async def add_labels(self, pr: PullRequest, labels: tuple[str, ...]) -> None:
        action = f"label pull request #{pr.number}"
        # Older Gitea releases take label ids only, so names are looked up first.
        known = await self.http.pages(f"{self._repo}/labels", action=action, params={"limit": 50})
        ids = {cast(GiteaLabel, lb).get("name"): cast(GiteaLabel, lb).get("id") for lb in known}
        missing = [name for name in labels if name not in ids]
        if missing:
            raise self.http.error(
                f"no such label in the repository: {', '.join(missing)}", action=action
            )
        await self.http.call(
            "POST",
            f"{self._repo}/issues/{pr.number}/labels",
            action=action,
            json={"labels": [ids[name] for name in labels]},
        )

    async def enable_automerge(self, pr: PullRequest) -> None:
        await self.http.call(
            "POST",
            f"{self._repo}/pulls/{pr.number}/merge",
            action=f"schedule pull request #{pr.number} to merge when checks succeed",
            json={"Do": "merge", "merge_when_checks_succeed": True},
        )

    async def commit_statuses(self, sha: str) -> list[CommitStatus]:
        items = await self.http.pages(
            f"{self._repo}/commits/{sha}/statuses",
            action=f"read statuses of commit {sha[:12]}",
            params={"limit": 50},
        )
        # Gitea's states: pending | success | error | failure | warning
        return statuses(items, context="context", state="status", states=_STATUS)


def _pull(data: GiteaPull) -> PullRequest:
    return pull(data, merged=bool(data.get("merged")), draft_prefix=DRAFT_PREFIX)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}
