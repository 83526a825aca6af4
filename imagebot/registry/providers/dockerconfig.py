"""Credentials from a Docker ``config.json``: ``auths``, ``credHelpers`` and ``credsStore``.

Lookup follows the Docker CLI (cli/config/configfile): a ``credHelpers`` entry for the
registry wins, then ``credsStore``, then the inline ``auths`` entry. Keys are compared by
host name after stripping scheme and path (Docker's ``ConvertToHostname``), so
``https://ghcr.io``, ``ghcr.io`` and ``ghcr.io/v2/`` all match ``ghcr.io``. Docker Hub's key
is ``https://index.docker.io/v1/``; ``docker.io``, ``index.docker.io`` and
``registry-1.docker.io`` are treated as the same registry.

Helpers speak the docker-credential-helpers protocol: ``docker-credential-<name> get`` with
the server URL on stdin, ``{"ServerURL", "Username", "Secret"}`` on stdout, and exit status
1 with "credentials not found" when the store has no entry.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from imagebot.errors import AuthError
from imagebot.logs import get_logger
from imagebot.registry.credentials import IDENTITY_TOKEN_USERNAME, Credentials
from imagebot.registry.providers.env import Environment

log = get_logger(__name__)

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_NOT_FOUND_MARKER = "credentials not found"
HELPER_TIMEOUT_SECONDS = 30.0


def config_hostname(key: str) -> str:
    """The registry host a config key or registry name refers to (Docker's ConvertToHostname)."""
    lowered = key.strip().lower()
    for scheme in ("http://", "https://"):
        if lowered.startswith(scheme):
            lowered = lowered[len(scheme) :]
            break
    host = lowered.split("/", 1)[0]
    return "docker.io" if host in _DOCKER_HUB_HOSTS else host


def server_url(registry: str) -> str:
    """What Docker hands a credential helper for this registry."""
    host = config_hostname(registry)
    return DOCKER_HUB_SERVER if host == "docker.io" else host


@dataclass(frozen=True)
class DockerConfig:
    """The credential-relevant part of one Docker config document."""

    origin: str
    auths: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cred_helpers: Mapping[str, str] = field(default_factory=dict)
    creds_store: str | None = None

    @classmethod
    def parse(cls, text: str, *, origin: str) -> DockerConfig:
        """Parse ``config.json``/``.dockerconfigjson`` or the legacy ``.dockercfg`` layout."""
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise AuthError(f"{origin}: not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(data, dict):
            raise AuthError(f"{origin}: expected a JSON object")
        if {"auths", "credHelpers", "credsStore"} & data.keys():
            auths = data.get("auths") or {}
        else:
            # Legacy ~/.dockercfg and kubernetes.io/dockercfg secrets: the top-level object
            # is the auths map itself.
            auths = data
        helpers = data.get("credHelpers") or {}
        store = data.get("credsStore") or None
        if not isinstance(auths, dict) or not all(isinstance(v, dict) for v in auths.values()):
            raise AuthError(f"{origin}: 'auths' must map registries to objects")
        if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
            raise AuthError(f"{origin}: 'credHelpers' must map registries to helper names")
        if store is not None and not isinstance(store, str):
            raise AuthError(f"{origin}: 'credsStore' must be a helper name")
        return cls(origin=origin, auths=auths, cred_helpers=helpers, creds_store=store)

    def helper_for(self, registry: str) -> str | None:
        """The helper to ask for this registry: its credHelpers entry, else credsStore."""
        host = config_hostname(registry)
        for key, helper in self.cred_helpers.items():
            if config_hostname(key) == host and helper:
                return helper
        return self.creds_store

    def inline_credentials(self, registry: str) -> Credentials | None:
        """Credentials stored in ``auths`` itself (``auth``, username/password, identitytoken)."""
        host = config_hostname(registry)
        exact = [k for k in (registry, server_url(registry)) if k in self.auths]
        by_host = [k for k in self.auths if config_hostname(k) == host]
        for key in [*exact, *by_host]:
            creds = _entry_credentials(self.auths[key], origin=f"{self.origin}: auths[{key!r}]")
            if creds is not None:
                return creds
        return None


def _entry_credentials(entry: Mapping[str, Any], *, origin: str) -> Credentials | None:
    username = entry.get("username") or ""
    password = entry.get("password") or ""
    auth = entry.get("auth")
    if auth:
        try:
            decoded = base64.b64decode(str(auth), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError(f"{origin}: 'auth' is not base64 of user:password") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{origin}: 'auth' does not decode to user:password")
    token = entry.get("identitytoken")
    if token:
        # Docker sends an identity token as an OAuth2 refresh token whatever the username.
        return Credentials(username=IDENTITY_TOKEN_USERNAME, password=str(token))
    if not username and not password:
        return None
    return Credentials(username=str(username), password=str(password))


async def run_credential_helper(
    helper: str,
    registry: str,
    environment: Environment,
    *,
    time_limit: float = HELPER_TIMEOUT_SECONDS,
) -> Credentials | None:
    """``docker-credential-<helper> get`` for this registry; None when the store has no entry."""
    program = f"docker-credential-{helper}"
    search_path = environment.vars.get("PATH", os.defpath)
    executable = shutil.which(program, path=search_path)
    what = f"credential helper {program}"
    if executable is None:
        raise AuthError(f"{what} not found on PATH", registry=registry)
    try:
        with anyio.fail_after(time_limit):
            result = await anyio.run_process(
                [executable, "get"],
                input=server_url(registry).encode(),
                env=dict(environment.vars),
                check=False,
            )
    except TimeoutError as exc:
        raise AuthError(f"{what} did not answer within {time_limit:g}s", registry=registry) from exc
    except OSError as exc:
        raise AuthError(f"{what} could not run: {exc}", registry=registry) from exc
    stdout = result.stdout.decode("utf-8", "replace").strip()
    stderr = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0:
        if _NOT_FOUND_MARKER in stdout.lower() or _NOT_FOUND_MARKER in stderr.lower():
            return None
        detail = (stderr or stdout or "no output")[:300]
        raise AuthError(
            f"{what} failed with exit status {result.returncode}: {detail}", registry=registry
        )
    try:
        answer = json.loads(stdout)
    except ValueError as exc:
        raise AuthError(f"{what} did not print JSON", registry=registry) from exc
    if not isinstance(answer, dict):
        raise AuthError(f"{what} did not print a JSON object", registry=registry)
    username, secret = answer.get("Username") or "", answer.get("Secret") or ""
    if not isinstance(username, str) or not isinstance(secret, str):
        raise AuthError(f"{what} printed a non-string Username or Secret", registry=registry)
    if not secret:
        return None
    return Credentials(username=username or IDENTITY_TOKEN_USERNAME, password=secret)


def default_config_path(environment: Environment) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``, as the Docker CLI."""
    directory = environment.get("DOCKER_CONFIG")
    if directory is not None:
        return environment.path(directory) / "config.json"
    return environment.home / ".docker" / "config.json"


def load_config_file(path: Path) -> DockerConfig | None:
    """The config at ``path``; None when the file does not exist (no credentials there)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return DockerConfig.parse(text, origin=str(path))


class DockerConfigProvider:
    """Credentials from a Docker config document, read afresh on each lookup.

    ``load`` returns the document (or None when there is none); re-reading keeps a
    ``docker login`` or a rotated Kubernetes secret effective without a restart — the
    caching wrapper in chain.py keeps this from happening per request.
    """

    def __init__(
        self,
        load: Callable[[], DockerConfig | None],
        environment: Environment,
        *,
        helper_timeout: float = HELPER_TIMEOUT_SECONDS,
    ) -> None:
        self._load = load
        self._environment = environment
        self._helper_timeout = helper_timeout

    @classmethod
    def from_file(cls, path: Path, environment: Environment) -> DockerConfigProvider:
        return cls(lambda: load_config_file(path), environment)

    @classmethod
    def from_env(cls, variable: str, environment: Environment) -> DockerConfigProvider:
        def load() -> DockerConfig | None:
            text = environment.get(variable)
            return None if text is None else DockerConfig.parse(text, origin=f"${variable}")

        return cls(load, environment)

    def __repr__(self) -> str:
        return "DockerConfigProvider()"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        try:
            config: DockerConfig | None = self._load()
        except AuthError as exc:
            raise AuthError(str(exc), registry=registry) from exc
        if config is None:
            return None
        helper = config.helper_for(registry)
        if helper is not None:
            creds = await run_credential_helper(
                helper, registry, self._environment, time_limit=self._helper_timeout
            )
            if creds is not None:
                log.debug("credentials_found", registry=registry, source=f"helper:{helper}")
                return creds
        creds = config.inline_credentials(registry)
        if creds is not None:
            log.debug("credentials_found", registry=registry, source=config.origin)
        return creds
