"""Composition: try providers in order, and cache what they return until shortly before expiry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from imagebot.errors import AuthError
from imagebot.logs import get_logger
from imagebot.registry.credentials import CredentialProvider, Credentials

log = get_logger(__name__)

DEFAULT_REFRESH_MARGIN = timedelta(minutes=30)
"""Short-lived credentials are renewed this long before they expire (ECR's 12 h tokens at
11 h 30 min), or at half their lifetime when that is shorter, so a token handed out is
always good for the scan that uses it."""

DEFAULT_STATIC_TTL = timedelta(minutes=1)
"""Credentials without an expiry (config files, helpers, mounted secrets) are looked up
again after this long: a ``docker login`` or a rotated secret takes effect within a minute,
yet a scan of thousands of repositories runs a credential helper once, not per request."""


class ChainProvider:
    """Asks each provider in turn; the first that has credentials wins."""

    def __init__(self, providers: Sequence[CredentialProvider]) -> None:
        self._providers = tuple(providers)

    def __repr__(self) -> str:
        return f"ChainProvider({', '.join(repr(p) for p in self._providers)})"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        for provider in self._providers:
            creds = await provider.get(registry, now=now)
            if creds is not None:
                return creds
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    credentials: Credentials | None
    fresh_until: datetime


class CachingProvider:
    """Remembers the answer per registry until it needs refreshing; one lookup at a time
    per registry, so a hundred concurrent requests cause one token exchange."""

    def __init__(
        self,
        inner: CredentialProvider,
        *,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        static_ttl: timedelta = DEFAULT_STATIC_TTL,
    ) -> None:
        self._inner = inner
        self._refresh_margin = refresh_margin
        self._static_ttl = static_ttl
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"CachingProvider({self._inner!r})"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        entry = self._entries.get(registry)
        if entry is not None and now < entry.fresh_until:
            return entry.credentials
        lock = self._locks.setdefault(registry, anyio.Lock())
        async with lock:
            entry = self._entries.get(registry)
            if entry is not None and now < entry.fresh_until:
                return entry.credentials
            try:
                creds = await self._inner.get(registry, now=now)
            except AuthError as exc:
                stale = entry.credentials if entry is not None else None
                if stale is not None and stale.expires_at is not None and not stale.expired(now):
                    # The old token is still valid: keep scanning with it and retry the
                    # exchange on the next lookup instead of failing the whole cycle.
                    log.warning(
                        "credentials_refresh_failed",
                        registry=registry,
                        error=str(exc),
                        expires_at=stale.expires_at.isoformat(),
                    )
                    return stale
                raise
            self._entries[registry] = _Entry(creds, self._fresh_until(creds, now))
            if creds is not None and creds.expires_at is not None:
                log.info(
                    "credentials_refreshed",
                    registry=registry,
                    expires_at=creds.expires_at.isoformat(),
                )
            return creds

    def forget(self, registry: str) -> None:
        """Ask the source again next time (the registry refused what it answered)."""
        self._entries.pop(registry, None)

    def _fresh_until(self, creds: Credentials | None, now: datetime) -> datetime:
        if creds is None or creds.expires_at is None:
            return now + self._static_ttl
        lifetime = creds.expires_at - now
        if lifetime <= timedelta(0):
            return now
        return creds.expires_at - min(self._refresh_margin, lifetime / 2)
