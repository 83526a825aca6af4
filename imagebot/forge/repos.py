"""What GitHub and Gitea answer alike: Gitea's API v1 follows GitHub's REST shapes for a
repository's pull requests (``/repos/{owner}/{name}/…``), so these requests are written once.

Each forge keeps what differs: how pull requests are listed and parsed, labels, comments
listing, auto-merge and commit statuses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from imagebot.forge.base import ForgeHTTP, PullRequest, PullState


class RepoPulls(ABC):
    """Pull requests of one ``owner/name`` repository on GitHub or Gitea."""

    def __init__(self, http: ForgeHTTP) -> None:
        self.http = http
        self.project = http.project
        self._repo = f"/repos/{http.project}"

    @abstractmethod
    async def _pulls(self, state: str, head: str, base: str, *, action: str) -> list[PullRequest]:
        """The pull requests from ``head`` into ``base`` in ``state`` (open or closed)."""

    async def find_open(self, *, head: str, base: str) -> PullRequest | None:
        pulls = await self._pulls("open", head, base, action="find open pull request")
        return pulls[0] if pulls else None

    async def closed(self, *, head: str, base: str) -> list[PullRequest]:
        return await self._pulls("closed", head, base, action="list closed pull requests")

    async def comment(self, pr: PullRequest, body: str) -> None:
        await self.http.call(
            "POST",
            f"{self._repo}/issues/{pr.number}/comments",
            action=f"comment on pull request #{pr.number}",
            json={"body": body},
        )

    async def close(self, pr: PullRequest, *, body: str | None = None) -> None:
        payload: dict[str, Any] = {"state": "closed"}
        if body is not None:
            payload["body"] = body
        await self.http.call(
            "PATCH",
            f"{self._repo}/pulls/{pr.number}",
            action=f"close pull request #{pr.number}",
            json=payload,
        )

    async def request_reviewers(self, pr: PullRequest, reviewers: tuple[str, ...]) -> None:
        await self.http.call(
            "POST",
            f"{self._repo}/pulls/{pr.number}/requested_reviewers",
            action=f"request reviewers on pull request #{pr.number}",
            json={"reviewers": list(reviewers)},
        )


def pull(data: Any, *, merged: bool, draft_prefix: str = "") -> PullRequest:
    """A pull request from GitHub's or Gitea's answer; a forge that marks a draft by a title
    prefix names it."""
    state: PullState = "open"
    if data.get("state") == "closed":
        state = "merged" if merged else "closed"
    title = data.get("title", "")
    return PullRequest(
        number=int(data["number"]),
        url=data.get("html_url", ""),
        title=title.removeprefix(draft_prefix),
        body=data.get("body") or "",
        state=state,
        head=data["head"]["ref"],
        base=data["base"]["ref"],
        draft=bool(data.get("draft")) or (bool(draft_prefix) and title.startswith(draft_prefix)),
        node_id=data.get("node_id", ""),
    )
