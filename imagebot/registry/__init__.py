"""Registry I/O: the OCI Distribution client, its auth, politeness and settings."""

from __future__ import annotations

from imagebot.registry.client import RegistryClient
from imagebot.registry.politeness import RetryPolicy
from imagebot.registry.settings import (
    RegistriesSettings,
    RegistryConfig,
    RegistrySettings,
    load_registries,
)

__all__ = [
    "RegistriesSettings",
    "RegistryClient",
    "RegistryConfig",
    "RegistrySettings",
    "RetryPolicy",
    "load_registries",
]
