"""The one runtime ``apply`` and ``serve`` share: registry client, cache, clones, locks.

``apply`` opens it for one cycle; ``serve`` keeps it open for months. Either way a cycle is
:func:`imagebot.engine.run_cycle`, run while holding the lock of every environment repo it
touches — a lock per repository, so environments in other repos run in parallel, while two
cycles never share a clone at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from imagebot import config, engine
from imagebot.cache import FILE_NAME, Cache
from imagebot.clock import Clock, utc_now
from imagebot.core.policy import LoadedPolicy
from imagebot.core.selectmemo import SelectionMemo
from imagebot.engine import CycleResult
from imagebot.registry.client import RegistryClient, reusing_listings
from imagebot.registry.connect import connect
from imagebot.registry.scan import Registry
from imagebot.registry.settings import RegistriesSettings

RegistryWrapper = Callable[[Registry], Registry]


class Runtime:
    """Async context manager owning what outlives one cycle."""

    def __init__(
        self,
        *,
        settings: RegistriesSettings | Callable[[], RegistriesSettings],
        cache_dir: Path,
        clock: Clock = utc_now,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        wrap_registry: RegistryWrapper | None = None,
    ) -> None:
        # A callable is asked before every cycle (serve's registries.yaml, re-read when it
        # changes): new cycles use a client built from new settings, and the old client
        # closes when the last cycle using it ends.
        self._settings = settings if callable(settings) else lambda: settings
        self.settings = self._settings()
        self.cache_dir = cache_dir
        self.repos_dir = cache_dir / "repos"
        self.clock = clock
        self._event_hooks = event_hooks
        self._wrap = wrap_registry
        self._stack = AsyncExitStack()
        self._registry: Registry | None = None
        self._cache: Cache | None = None
        self._client: RegistryClient | None = None
        self._clients: dict[RegistryClient, AsyncExitStack] = {}
        self._in_use: Counter[RegistryClient] = Counter()
        self._locks: dict[str, anyio.Lock] = {}
        self._memo = SelectionMemo()
        """Selection decisions kept from one cycle to the next (a daemon's warm cycles)."""

    async def __aenter__(self) -> Runtime:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._cache = Cache(self.cache_dir / FILE_NAME)
        self._stack.callback(self._cache.close)
        self._stack.push_async_callback(self._close_clients)
        await self._connect(self.settings)
        return self

    async def _connect(self, settings: RegistriesSettings) -> None:
        assert self._cache is not None
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            connect(settings, cache=self._cache, event_hooks=self._event_hooks, clock=self.clock)
        )
        self._clients[client] = stack
        self.settings, self._client = settings, client
        self._registry = self._wrap(client) if self._wrap else client

    async def _retire(self, client: RegistryClient) -> None:
        """Close a client built from settings since replaced, once no cycle uses it."""
        if client is not self._client and not self._in_use[client]:
            with anyio.CancelScope(shield=True):
                await self._clients.pop(client).aclose()

    async def _close_clients(self) -> None:
        for stack in self._clients.values():
            await stack.aclose()
        self._clients.clear()

    async def __aexit__(self, *exc: object) -> None:
        self._registry = self._client = self._cache = None
        await self._stack.aclose()

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("Runtime used outside `async with`")
        return self._registry

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            raise RuntimeError("Runtime used outside `async with`")
        return self._cache

    def repo_urls(self, policies: Sequence[LoadedPolicy]) -> list[str]:
        """The environment repos ``policies`` write to, sorted (the order locks are taken)."""
        return sorted({config.resolve_repo_url(p.policy.repo.url, p.source) for p in policies})

    def busy(self, url: str) -> bool:
        lock = self._locks.get(url)
        return lock is not None and lock.locked()

    def pushed(self, repository: str) -> None:
        """A webhook reported a push: the next listing of ``repository`` asks the registry
        (whatever its registry's ``scan_interval`` says)."""
        if self._client is not None:
            self._client.expire(repository)

    async def run_cycle(
        self,
        policies: Sequence[LoadedPolicy],
        *,
        publish: bool,
        problems: Sequence[str] = (),
        known_tags: bool = False,
        **engine_options: Any,
    ) -> CycleResult:
        """One engine cycle over ``policies`` under their repositories' locks.

        With ``known_tags`` (a cycle triggered by webhooks only), repositories no webhook
        reported since their last listing reuse that listing instead of asking the registry:
        the webhook already said what changed. Every other cycle lists every repository.
        ``engine_options`` go to :func:`imagebot.engine.run_cycle` as they are."""
        if (settings := self._settings()) != self.settings and self._client is not None:
            old = self._client
            await self._connect(settings)
            await self._retire(old)
        client, registry = self._client, self.registry
        assert client is not None
        self._in_use[client] += 1
        async with AsyncExitStack() as locks:
            locks.push_async_callback(self._retire, client)
            locks.callback(self._in_use.subtract, [client])
            for url in self.repo_urls(policies):
                # Sorted acquisition: two cycles over overlapping repos cannot deadlock.
                await locks.enter_async_context(self._locks.setdefault(url, anyio.Lock()))
            if known_tags:
                locks.enter_context(reusing_listings())
            return await engine.run_cycle(
                policies,
                registry=registry,
                repos_dir=self.repos_dir,
                publish=publish,
                clock=self.clock,
                problems=problems,
                **{"memo": self._memo, "cache": self.cache, **engine_options},
            )
