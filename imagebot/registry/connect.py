"""One registry client wired the way every command uses it: settings, credentials, cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx

from imagebot.cache import Cache
from imagebot.registry.client import RegistryClient
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.spec import CredentialSource
from imagebot.registry.settings import RegistriesSettings


def credential_sources(settings: RegistriesSettings) -> dict[str, CredentialSource]:
    """Per-host credential sources, with ``defaults.credentials`` as the catch-all ``*``."""
    sources = {h: s.credentials for h, s in settings.registries.items() if s.credentials}
    if settings.defaults.credentials is not None:
        sources["*"] = settings.defaults.credentials
    return sources


@asynccontextmanager
async def connect(
    settings: RegistriesSettings,
    *,
    cache: Cache,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[RegistryClient]:
    """A RegistryClient with credentials from ``settings`` (and the Docker config);
    ``event_hooks`` go on its registry HTTP clients (the daemon's metrics); ``clock`` (the
    cycle's) stamps listings, first sightings and tokens."""
    async with (
        httpx.AsyncClient(timeout=30) as http,
        RegistryClient(
            settings=settings,
            credentials=provider_for(credential_sources(settings), http=http),
            cache=cache,
            event_hooks=event_hooks,
            clock=clock,
        ) as client,
    ):
        yield client
