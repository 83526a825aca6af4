"""Credentials from a mounted Kubernetes secret directory.

A pull secret mounted as a volume becomes one file per key: ``.dockerconfigjson`` for
``kubernetes.io/dockerconfigjson``, ``.dockercfg`` for the legacy ``kubernetes.io/dockercfg``,
and ``username`` + ``password`` for ``kubernetes.io/basic-auth``. The kubelet swaps the files
in place on rotation (through the ``..data`` symlink), so they are read on every lookup.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers.dockerconfig import DockerConfigProvider
from imagebot.registry.providers.env import Environment, read_secret_file

DOCKER_CONFIG_KEYS = (".dockerconfigjson", ".dockercfg")


class SecretDirectoryProvider:
    """A mounted secret: its Docker config file if present, else its username/password files."""

    def __init__(self, directory: Path, environment: Environment) -> None:
        self._directory = directory
        self._environment = environment

    def __repr__(self) -> str:
        return f"SecretDirectoryProvider({str(self._directory)!r})"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        for key in DOCKER_CONFIG_KEYS:
            path = self._directory / key
            if path.is_file():
                provider = DockerConfigProvider.from_file(path, self._environment)
                return await provider.get(registry, now=now)
        username_file = self._directory / "username"
        password_file = self._directory / "password"
        if username_file.is_file() or password_file.is_file():
            what = f"secret {self._directory}"
            return Credentials(
                username=read_secret_file(username_file, registry=registry, what=what),
                password=read_secret_file(password_file, registry=registry, what=what),
            )
        if not self._directory.is_dir():
            raise AuthError(f"secret {self._directory}: no such directory", registry=registry)
        raise AuthError(
            f"secret {self._directory}: holds none of .dockerconfigjson, .dockercfg, "
            "username + password",
            registry=registry,
        )
