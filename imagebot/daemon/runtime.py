"""The one runtime ``apply`` and ``serve`` share: registry client, cache, clones, locks.

``apply`` opens it for one cycle; ``serve`` keeps it open for months. Either way a cycle is
:func:`imagebot.engine.run_cycle`, run while holding the lock of every environment repo it
touches — a lock per repository, so environments in other repos run in parallel, while two
cycles never share a clone at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from imagebot import config, engine
from imagebot.core.policy import LoadedPolicy
from imagebot.engine import Clock, CycleResult, Registry, utc_now
from imagebot.registry.cache import TagCache
from imagebot.registry.connect import connect
from imagebot.registry.settings import RegistriesSettings

RegistryWrapper = Callable[[Registry], Registry]


class Runtime:
    """Async context manager owning what outlives one cycle."""

    def __init__(
        self,
        *,
        settings: RegistriesSettings,
        cache_dir: Path,
        clock: Clock = utc_now,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        wrap_registry: RegistryWrapper | None = None,
    ) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.repos_dir = cache_dir / "repos"
        self.clock = clock
        self._event_hooks = event_hooks
        self._wrap = wrap_registry
        self._stack = AsyncExitStack()
        self._registry: Registry | None = None
        self._locks: dict[str, anyio.Lock] = {}

    async def __aenter__(self) -> Runtime:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache = TagCache(self.cache_dir / "registry.sqlite")
        self._stack.callback(cache.close)
        client = await self._stack.enter_async_context(
            connect(self.settings, cache=cache, event_hooks=self._event_hooks)
        )
        self._registry = self._wrap(client) if self._wrap else client
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._registry = None
        await self._stack.aclose()

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("Runtime used outside `async with`")
        return self._registry

    def repo_urls(self, policies: Sequence[LoadedPolicy]) -> list[str]:
        """The environment repos ``policies`` write to, sorted (the order locks are taken)."""
        return sorted({config.resolve_repo_url(p.policy.repo.url, p.source) for p in policies})

    def busy(self, url: str) -> bool:
        lock = self._locks.get(url)
        return lock is not None and lock.locked()

    async def run_cycle(
        self, policies: Sequence[LoadedPolicy], *, publish: bool, problems: Sequence[str] = ()
    ) -> CycleResult:
        """One engine cycle over ``policies`` under their repositories' locks."""
        async with AsyncExitStack() as locks:
            for url in self.repo_urls(policies):
                # Sorted acquisition: two cycles over overlapping repos cannot deadlock.
                await locks.enter_async_context(self._locks.setdefault(url, anyio.Lock()))
            return await engine.run_cycle(
                policies,
                registry=self.registry,
                repos_dir=self.repos_dir,
                publish=publish,
                clock=self.clock,
                problems=problems,
            )
