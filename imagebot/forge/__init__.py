"""Pull requests on GitHub, GitLab and Gitea behind one small interface (:class:`Forge`).

``FORGES`` maps a policy's ``forge.type`` to its implementation and the headers its token
travels in; nothing outside this package knows which forge it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from imagebot.clock import Clock, Sleep
from imagebot.forge import gitea, github, gitlab
from imagebot.forge.base import (
    CommitStatus,
    Forge,
    ForgeHTTP,
    PullRequest,
)

__all__ = ["FORGES", "CommitStatus", "Forge", "PullRequest", "connect_forge"]


@dataclass(frozen=True)
class ForgeKind:
    """One forge type: how to build it, which headers carry its token, and its public API
    (used when a policy's ``forge.url`` is not given)."""

    make: Callable[[ForgeHTTP], Forge]
    headers: Callable[[str], dict[str, str]]
    api_url: str


FORGES: dict[str, ForgeKind] = {
    "github": ForgeKind(github.GitHub, github.headers, "https://api.github.com"),
    "gitlab": ForgeKind(gitlab.GitLab, gitlab.headers, "https://gitlab.com/api/v4"),
    "gitea": ForgeKind(gitea.Gitea, gitea.headers, "https://gitea.com/api/v1"),
}


def connect_forge(
    kind: str,
    *,
    client: httpx.AsyncClient,
    api_url: str | None,
    project: str,
    token: str,
    sleep: Sleep,
    clock: Clock,
) -> Forge:
    """A forge client for one project, sending through ``client`` to ``api_url`` (default:
    the forge's public API)."""
    entry = FORGES[kind]
    http = ForgeHTTP(
        client=client,
        forge=kind,
        base_url=(api_url or entry.api_url).rstrip("/"),
        project=project,
        headers=entry.headers(token),
        sleep=sleep,
        clock=clock,
    )
    return entry.make(http)
