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
from datetime import datetime

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx

from imagebot import config
from imagebot.clock import Clock, Sleep, utc_now
from imagebot.core.plan import EnvironmentPlan
from imagebot.core.policy import LoadedPolicy
from imagebot.core.publish_policy import derive_project
from imagebot.errors import ForgeError
from imagebot.forge import Forge, connect_forge
from imagebot.git.repo import EnvRepo
from imagebot.git.signing import Signing
from imagebot.livefile import secret_file
from imagebot.publisher.base import (
    ImageInfoReader,
    ImageInfos,
    Publication,
    Publisher,
    Settled,
    log,
    source_links,
)
from imagebot.publisher.commit import CommitPublisher
from imagebot.publisher.pending import PendingPushes, RemoteBranches
from imagebot.publisher.pull_request import PullRequestPublisher
from imagebot.redact import SecretError, remember, secret

__all__ = [
    "CommitPublisher",
    "ImageInfoReader",
    "Publication",
    "Publisher",
    "Publishers",
    "PullRequestPublisher",
    "source_links",
]


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
        clock: Clock = utc_now,
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

    async def settle(
        self, clone: str | None, *, attempts: int, again: Callable[[str], Awaitable[None]]
    ) -> Settled:
        """Push what waits from this cycle (commit chains, pull-request branches) — of one
        clone directory, or all — and open or update the pull requests of the branches
        pushed. An environment whose push found the branch moved (or whose plan went stale
        before) is published again: ``again(environment)`` re-reads and re-plans it and hands
        the new plan to its publisher; then what waits is pushed again, ``attempts`` pushes
        at most. This is the one place a push race is retried."""
        settled = Settled(failed={}, notes={})
        for attempt in range(1, attempts + 1):
            await anyio.lowlevel.checkpoint_if_cancelled()
            with anyio.CancelScope(shield=True):  # a pushed branch always gets its pull request
                moved = await self._push(clone, settled)
            for environment, why in moved.items():
                if attempt == attempts:
                    log.error("publish_failed", environment=environment, error=why)
                    settled.failed[environment] = f"gave up after {attempts} push attempts: {why}"
                    continue
                log.warning("push_race", environment=environment, attempt=attempt, error=why)
                await again(environment)
            if not moved:
                break
        return settled

    async def _push(self, clone: str | None, settled: Settled) -> dict[str, str]:
        """One round of :meth:`settle`; the environments to publish again, with why."""
        moved = self.pending.take_again(clone)
        refused = await anyio.to_thread.run_sync(self.pending.push_all, clone)
        pushed, branches = await anyio.to_thread.run_sync(self.pending.push_branches, clone)
        if branches:
            self.branches.forget_all()  # a branch moved under us: list them again
        for environment, why in {**refused, **branches}.items():
            if why.moved:
                moved[environment] = why.message
            else:
                log.error("publish_failed", environment=environment, error=why.message)
                settled.failed[environment] = why.message
        for push in pushed:
            try:
                settled.notes[push.environment] = await push.then()
            except ForgeError as exc:
                log.error("publish_failed", environment=push.environment, error=str(exc))
                settled.failed[push.environment] = str(exc)
        return moved

    async def __aenter__(self) -> Publishers:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def for_policy(self, loaded: LoadedPolicy) -> Publisher:
        """The environment's publisher. Without its forge token a pull-request environment
        still previews (a plan needs no token); publishing raises the ForgeError."""
        policy = loaded.policy
        signing = None
        if policy.signing is not None:
            key = config.path_beside(policy.signing.key_file, loaded.source)
            signing = Signing(format=policy.signing.format, key_file=key)
        try:
            forge = self.forge_for(loaded)
        except ForgeError as exc:
            if policy.publish.mode == "commit":
                raise
            return _Tokenless(exc)
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
            api_url=forge.url,
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

        try:
            if forge.token_env is not None:
                value = self.environ.get(forge.token_env)
                if not value:
                    raise error(
                        f"environment variable {forge.token_env} is not set ({loaded.source})"
                    )
                return remember(secret(value, what=f"environment variable {forge.token_env}"))
            assert forge.token_file is not None
            path = config.path_beside(forge.token_file, loaded.source)
            try:
                return remember(secret_file(path, what="token file"))
            except OSError as exc:
                raise error(f"cannot read token file {path}: {exc.strerror}") from None
        except SecretError as exc:
            raise error(str(exc)) from None


class _Tokenless:
    """A pull-request environment whose forge token is not here (a laptop): the plan is
    the same, only which pull request it touches is unknown."""

    def __init__(self, error: ForgeError) -> None:
        self.error = error

    async def preview(self, repo: EnvRepo, plan: EnvironmentPlan) -> Publication:
        return Publication(
            note="pull request: cannot tell which (no token)" if plan.changes else None
        )

    async def publish(
        self, repo: EnvRepo, plan: EnvironmentPlan, *, when: datetime, images: ImageInfoReader
    ) -> Publication:
        raise self.error
