"""GitHub (github.com and GitHub Enterprise Server) through its REST API, plus the one
GraphQL mutation auto-merge needs (REST has no endpoint for it)."""

from __future__ import annotations

from typing import TypedDict, cast

from imagebot.forge.base import CommitStatus, ForgeHTTP, PullRequest, StatusState, statuses
from imagebot.forge.repos import RepoPulls, pull


class _Ref(TypedDict):
    ref: str


class GitHubPull(TypedDict, total=False):
    number: int
    node_id: str
    html_url: str
    title: str
    body: str | None
    state: str  # open | closed
    draft: bool
    merged_at: str | None
    head: _Ref
    base: _Ref


class GitHubComment(TypedDict, total=False):
    id: int
    body: str


class GitHubCheckRun(TypedDict, total=False):
    name: str
    status: str  # queued | in_progress | completed …
    conclusion: str | None  # success | failure | neutral | cancelled | skipped | timed_out …
    html_url: str | None


_STATUS: dict[str, StatusState] = {"success": "success", "failure": "failure", "error": "error"}
_CHECK_STATE: dict[str, StatusState] = {
    "success": "success",
    "neutral": "success",
    "skipped": "success",
    "failure": "failure",
    "timed_out": "failure",
    "action_required": "failure",
    "cancelled": "error",
    "stale": "error",
}


class GitHub(RepoPulls):
    """One GitHub repository (``owner/name``)."""

    kind = "github"

    def __init__(self, http: ForgeHTTP) -> None:
        super().__init__(http)
        self._owner = http.project.split("/")[0]

    async def _pulls(self, state: str, head: str, base: str, *, action: str) -> list[PullRequest]:
        params: dict[str, str | int] = {
            "state": state,
            "head": f"{self._owner}:{head}",
            "base": base,
            "per_page": 100,
        }
        items = await self.http.pages(f"{self._repo}/pulls", action=action, params=params)
        return [_pull(cast(GitHubPull, i)) for i in items]

    async def open(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        data = await self.http.json(
            "POST",
            f"{self._repo}/pulls",
            action=f"open pull request {head} -> {base}",
            json={"title": title, "head": head, "base": base, "body": body, "draft": draft},
        )
        return _pull(cast(GitHubPull, data))

    async def update(self, pr: PullRequest, *, title: str, body: str) -> PullRequest:
        data = await self.http.json(
            "PATCH",
            f"{self._repo}/pulls/{pr.number}",
            action=f"update pull request #{pr.number}",
            json={"title": title, "body": body},
        )
        return _pull(cast(GitHubPull, data))

    async def comments(self, pr: PullRequest) -> list[str]:
        items = await self.http.pages(
            f"{self._repo}/issues/{pr.number}/comments",
            action=f"list comments of pull request #{pr.number}",
            params={"per_page": 100},
        )
        return [str(cast(GitHubComment, i).get("body") or "") for i in items]

    async def add_labels(self, pr: PullRequest, labels: tuple[str, ...]) -> None:
        await self.http.call(
            "POST",
            f"{self._repo}/issues/{pr.number}/labels",
            action=f"label pull request #{pr.number}",
            json={"labels": list(labels)},
        )

    async def enable_automerge(self, pr: PullRequest) -> None:
        action = f"enable auto-merge on pull request #{pr.number}"
        data = await self.http.json(
            "POST",
            _graphql_url(self.http.base_url),
            action=action,
            json={
                "query": "mutation($id: ID!) { enablePullRequestAutoMerge("
                "input: {pullRequestId: $id}) { pullRequest { number } } }",
                "variables": {"id": pr.node_id},
            },
        )
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:  # GraphQL reports failures with 200 and an "errors" list
            text = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
            raise self.http.error(text or "GraphQL error", action=action)

    async def commit_statuses(self, sha: str) -> list[CommitStatus]:
        action = f"read statuses of commit {sha[:12]}"
        # Both lists are paged (Link headers) inside an object: a commit can carry more
        # than one page of check runs (a monorepo's CI), and every one of them counts.
        items = await self.http.pages(
            f"{self._repo}/commits/{sha}/status", action=action, params={"per_page": 100},
            within="statuses",
        )  # fmt: skip
        out = statuses(items, context="context", state="state", states=_STATUS)
        runs = await self.http.pages(
            f"{self._repo}/commits/{sha}/check-runs", action=action, params={"per_page": 100},
            within="check_runs",
        )  # fmt: skip
        for run in cast(list[GitHubCheckRun], runs):
            state: StatusState = "pending"
            if run.get("status") == "completed":
                state = _CHECK_STATE.get(run.get("conclusion") or "", "failure")
            out.append(CommitStatus(context=run.get("name", ""), state=state,
                                    url=run.get("html_url")))  # fmt: skip
        return out


def _graphql_url(base_url: str) -> str:
    """api.github.com/graphql; GitHub Enterprise Server: https://host/api/graphql."""
    if base_url.endswith("/api/v3"):
        return base_url.removesuffix("/v3") + "/graphql"
    return base_url + "/graphql"


def _pull(data: GitHubPull) -> PullRequest:
    return pull(data, merged=bool(data.get("merged_at")))


def headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
