"""Basic credentials given inline, in environment variables, or in files."""

from __future__ import annotations

from datetime import datetime

from imagebot.registry.credentials import Credentials
from imagebot.registry.providers.env import Environment, read_secret_file, require_env
from imagebot.registry.providers.spec import BasicSource


class BasicProvider:
    """Username and password from a ``basic`` source, re-resolved on every lookup so a
    rotated variable or mounted file takes effect without a restart."""

    def __init__(self, source: BasicSource, environment: Environment) -> None:
        self._source = source
        self._environment = environment

    def __repr__(self) -> str:
        return "BasicProvider()"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        return Credentials(
            username=self._value(registry, "username"),
            password=self._value(registry, "password"),
            origin=self._source.origin(),
        )

    def _value(self, registry: str, name: str) -> str:
        inline: str | None = getattr(self._source, name)
        if inline is not None:
            return inline
        env_name: str | None = getattr(self._source, f"{name}_env")
        if env_name is not None:
            return require_env(self._environment, env_name, registry=registry, what=f"basic {name}")
        file_name: str = getattr(self._source, f"{name}_file")
        return read_secret_file(
            self._environment.path(file_name), registry=registry, what=f"basic {name}"
        )
