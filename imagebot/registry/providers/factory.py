"""Build the one CredentialProvider the registry client uses from the configured sources."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import assert_never

import httpx

from imagebot.registry.credentials import CredentialProvider, Credentials
from imagebot.registry.providers.basic import BasicProvider
from imagebot.registry.providers.chain import (
    DEFAULT_REFRESH_MARGIN,
    DEFAULT_STATIC_TTL,
    CachingProvider,
    ChainProvider,
)
from imagebot.registry.providers.dockerconfig import (
    DockerConfigProvider,
    config_hostname,
    default_config_path,
)
from imagebot.registry.providers.env import Environment
from imagebot.registry.providers.files import SecretDirectoryProvider
from imagebot.registry.providers.spec import (
    AcrSource,
    BasicSource,
    CredentialSource,
    DockerConfigSource,
    EcrSource,
    GarSource,
    SecretSource,
)


def provider_for(
    sources: Mapping[str, CredentialSource],
    *,
    http: httpx.AsyncClient | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    docker_config: bool = True,
    refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
    static_ttl: timedelta = DEFAULT_STATIC_TTL,
) -> CredentialProvider:
    """The provider for a ``credentials`` map keyed by registry host or glob.

    For each registry: the source whose key equals the host (``ghcr.io``, ``127.0.0.1:5000``)
    or else the first whose glob matches it (``*.dkr.ecr.*.amazonaws.com``), then — when
    that has nothing, or nothing is configured — the user's Docker config
    (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``) unless ``docker_config``
    is False. Everything is cached per registry: short-lived tokens until ``refresh_margin``
    before they expire, others for ``static_ttl``. ``env`` and ``home`` default to the real
    process environment and home directory; ``http`` is used for the cloud token exchanges.
    """
    environment = Environment.of(env, home)
    explicit = {key: _build(source, environment, http) for key, source in sources.items()}
    fallback: list[CredentialProvider] = []
    if docker_config:
        fallback.append(
            DockerConfigProvider.from_file(default_config_path(environment), environment)
        )
    router = _RegistryRouter(explicit, fallback)
    return CachingProvider(router, refresh_margin=refresh_margin, static_ttl=static_ttl)


def _build(
    source: CredentialSource, environment: Environment, http: httpx.AsyncClient | None
) -> CredentialProvider:
    if isinstance(source, BasicSource):
        return BasicProvider(source, environment)
    if isinstance(source, DockerConfigSource):
        if source.env is not None:
            return DockerConfigProvider.from_env(source.env, environment)
        path = (
            environment.path(source.path)
            if source.path is not None
            else default_config_path(environment)
        )
        return DockerConfigProvider.from_file(path, environment)
    if isinstance(source, SecretSource):
        return SecretDirectoryProvider(environment.path(source.path), environment)
    # The cloud providers are imported only when configured: botocore and the JWT signer
    # cost a few hundred milliseconds of start-up that most deployments never need.
    if isinstance(source, EcrSource):
        from imagebot.registry.providers.ecr import EcrProvider

        return EcrProvider(source, environment)
    if isinstance(source, GarSource):
        from imagebot.registry.providers.gar import GarProvider

        return GarProvider(source, environment, http)
    if isinstance(source, AcrSource):
        from imagebot.registry.providers.acr import AcrProvider

        return AcrProvider(source, environment, http)
    assert_never(source)


class _RegistryRouter:
    """Picks the configured source for a registry and falls back to the shared ones."""

    def __init__(
        self, explicit: Mapping[str, CredentialProvider], fallback: list[CredentialProvider]
    ) -> None:
        self._exact = {config_hostname(k): p for k, p in explicit.items() if not _is_glob(k)}
        self._globs = [(k.lower(), p) for k, p in explicit.items() if _is_glob(k)]
        self._fallback = fallback

    def __repr__(self) -> str:
        return f"_RegistryRouter(exact={sorted(self._exact)}, globs={[g for g, _ in self._globs]})"

    def source_for(self, registry: str) -> CredentialProvider | None:
        host = config_hostname(registry)
        if host in self._exact:
            return self._exact[host]
        for pattern, provider in self._globs:
            if fnmatch.fnmatchcase(host, pattern):
                return provider
        return None

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        chosen = self.source_for(registry)
        chain = ChainProvider([*([chosen] if chosen is not None else []), *self._fallback])
        return await chain.get(registry, now=now)


def _is_glob(key: str) -> bool:
    return any(ch in key for ch in "*?[")
