"""GitLab (gitlab.com and self-managed) merge requests through the REST API v4."""

from __future__ import annotations

from typing import Any, TypedDict, cast
from urllib.parse import quote

from imagebot.forge.base import (
    CommitStatus,
    ForgeHTTP,
    PullRequest,
    PullState,
    StatusState,
    statuses,
)

#: GitLab marks a draft merge request by this title prefix.
DRAFT_PREFIX = "Draft: "


class GitLabMergeRequest(TypedDict, total=False):
    iid: int
    web_url: str
    title: str
    description: str | None
    state: str  # opened | closed | merged | locked
    draft: bool
    source_branch: str
    target_branch: str


class GitLabNote(TypedDict, total=False):
    id: int
    body: str
    system: bool


class GitLabUser(TypedDict, total=False):
    id: int
    username: str


_STATUS: dict[str, StatusState] = {
    "success": "success",
    "skipped": "success",
    "failed": "failure",
    "canceled": "error",
}


class GitLab:
    """One GitLab project (``group/subgroup/name``)."""

    kind = "gitlab"

    def __init__(self, http: ForgeHTTP) -> None:
        self.http = http
        self.project = http.project
        self._mrs = f"/projects/{quote(http.project, safe='')}/merge_requests"

    async def find_open(self, *, head: str, base: str) -> PullRequest | None:
        mrs = await self._list("opened", head, base, action="find open merge request")
        return mrs[0] if mrs else None

    async def closed(self, *, head: str, base: str) -> list[PullRequest]:
        mrs = await self._list("all", head, base, action="list closed merge requests")
        return [mr for mr in mrs if mr.state != "open"]

    async def _list(self, state: str, head: str, base: str, *, action: str) -> list[PullRequest]:
        params: dict[str, str | int] = {
            "state": state,
            "source_branch": head,
            "target_branch": base,
            "per_page": 100,
        }
        items = await self.http.pages(self._mrs, action=action, params=params)
        return [_mr(cast(GitLabMergeRequest, i)) for i in items]

    async def open(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        data = await self.http.json(
            "POST",
            self._mrs,
            action=f"open merge request {head} -> {base}",
            json={
                "source_branch": head,
                "target_branch": base,
                "title": (DRAFT_PREFIX if draft else "") + title,
                "description": body,
            },
        )
        return _mr(cast(GitLabMergeRequest, data))

    async def update(self, pr: PullRequest, *, title: str, body: str) -> PullRequest:
        data = await self._put(
            pr,
            {"title": (DRAFT_PREFIX if pr.draft else "") + title, "description": body},
            action=f"update merge request !{pr.number}",
        )
        return _mr(cast(GitLabMergeRequest, data))

    async def comments(self, pr: PullRequest) -> list[str]:
        items = await self.http.pages(
            f"{self._mrs}/{pr.number}/notes",
            action=f"list notes of merge request !{pr.number}",
            params={"sort": "asc", "order_by": "created_at", "per_page": 100},
        )
        notes = [cast(GitLabNote, i) for i in items]
        return [n.get("body", "") for n in notes if not n.get("system")]

    async def comment(self, pr: PullRequest, body: str) -> None:
        await self.http.call(
            "POST",
            f"{self._mrs}/{pr.number}/notes",
            action=f"comment on merge request !{pr.number}",
            json={"body": body},
        )

    async def close(self, pr: PullRequest, *, body: str | None = None) -> None:
        payload: dict[str, Any] = {"state_event": "close"}
        if body is not None:
            payload["description"] = body
        await self._put(pr, payload, action=f"close merge request !{pr.number}")

    async def add_labels(self, pr: PullRequest, labels: tuple[str, ...]) -> None:
        await self._put(
            pr, {"add_labels": ",".join(labels)}, action=f"label merge request !{pr.number}"
        )

    async def request_reviewers(self, pr: PullRequest, reviewers: tuple[str, ...]) -> None:
        action = f"request reviewers on merge request !{pr.number}"
        ids = []
        for name in reviewers:
            users = await self.http.pages("/users", action=action, params={"username": name})
            if not users:
                raise self.http.error(f"no GitLab user named {name!r}", action=action)
            ids.append(int(cast(GitLabUser, users[0])["id"]))
        await self._put(pr, {"reviewer_ids": ids}, action=action)

    async def enable_automerge(self, pr: PullRequest) -> None:
        # auto_merge is the current name (GitLab 17); merge_when_pipeline_succeeds the older
        # one, still accepted: sending both works on either side of the rename.
        await self.http.call(
            "PUT",
            f"{self._mrs}/{pr.number}/merge",
            action=f"set merge request !{pr.number} to merge when the pipeline succeeds",
            json={"auto_merge": True, "merge_when_pipeline_succeeds": True},
        )

    async def commit_statuses(self, sha: str) -> list[CommitStatus]:
        project = quote(self.project, safe="")
        items = await self.http.pages(
            f"/projects/{project}/repository/commits/{sha}/statuses",
            action=f"read statuses of commit {sha[:12]}",
            params={"per_page": 100},
        )
        # GitLab's: created | pending | running | success | failed | canceled | skipped | manual
        return statuses(items, context="name", state="status", states=_STATUS)

    async def _put(self, pr: PullRequest, payload: dict[str, Any], *, action: str) -> Any:
        return await self.http.json("PUT", f"{self._mrs}/{pr.number}", action=action, json=payload)


def _mr(data: GitLabMergeRequest) -> PullRequest:
    # "locked" is GitLab's state while a merge is being carried out: not closed by a human,
    # so it is never read as a declined proposal.
    states: dict[str, PullState] = {"opened": "open", "locked": "open", "merged": "merged"}
    state = states.get(data.get("state", ""), "closed")
    title = data.get("title", "")
    draft = bool(data.get("draft")) or title.startswith(DRAFT_PREFIX)
    return PullRequest(
        number=int(data["iid"]),
        url=data.get("web_url", ""),
        title=title.removeprefix(DRAFT_PREFIX),
        body=data.get("description") or "",
        state=state,
        head=data.get("source_branch", ""),
        base=data.get("target_branch", ""),
        draft=draft,
    )


def headers(token: str) -> dict[str, str]:
    return {"PRIVATE-TOKEN": token}
