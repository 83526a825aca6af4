"""Commit statuses for the checks gate: read from the upstream's forge before a cycle
decides, so the promotion gates stay pure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from imagebot.core.governing import Ownership
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.gates import CommitStatuses
from imagebot.core.promotion.history import HistoryCommit, runs_by_image
from imagebot.errors import ImagebotError
from imagebot.forge.base import Forge

#: Reads the commit statuses of a commit in an environment's repo through its forge:
#: {context: state}. Raises ImagebotError when the forge cannot answer.
StatusSource = Callable[[LoadedPolicy, str], Awaitable[Mapping[str, str]]]


async def read_statuses(
    loaded: LoadedPolicy,
    upstream: LoadedPolicy,
    upstream_history: Sequence[HistoryCommit],
    source: StatusSource,
) -> CommitStatuses:
    """Ask the forge once for the statuses of every upstream commit a candidate of
    ``loaded`` ran in; a failed read leaves that commit's checks unverified."""
    up_images = [i for image in loaded.policy.images if (i := upstream.policy.image(image.name))]
    runs = runs_by_image(Ownership(up_images), upstream_history)
    found: dict[str, Mapping[str, str] | None] = {}
    for sha in sorted({run.commit for ran in runs.values() for run in ran}):
        try:
            found[sha] = await source(upstream, sha)
        except ImagebotError:
            found[sha] = None
    return lambda _env, sha: found.get(sha)


def forge_statuses(forge: Forge | ImagebotError | None) -> StatusSource | None:
    """The commit statuses of the upstream's repo from its forge (``publish.forge``); None
    when it names none. A forge that cannot be reached (no token, say) fails every read."""
    if forge is None:
        return None

    async def read(env: LoadedPolicy, sha: str) -> Mapping[str, str]:
        if isinstance(forge, ImagebotError):
            raise forge
        return {s.context: s.state for s in await forge.commit_statuses(sha)}

    return read
