"""The one seam between the registry client and every source of credentials.

A provider answers "which username/secret do I send to this registry?". Every source —
static Basic, Docker ``config.json`` and its helpers, environment variables, mounted
secret files, AWS ECR, Google Artifact Registry, Azure ACR — ends up as a username and a
secret the registry's Basic or token endpoint accepts, so the client needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from imagebot.redact import remember

IDENTITY_TOKEN_USERNAME = "<token>"
"""Docker's marker username: the password is an OAuth2 refresh token ("identity token") to
send as ``grant_type=refresh_token`` to the registry's token endpoint, not a Basic password."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and secret for one registry; ``expires_at`` when the secret is short-lived.

    The secret never appears in ``repr`` so a logged object cannot leak it.
    """

    username: str
    password: str = field(repr=False)
    expires_at: datetime | None = None
    #: where they come from, for messages ("password from $PRIV_PW, registries.yaml:3")
    origin: str = field(default="", compare=False)

    def refused(self, scheme: str) -> str:
        """What to say when the registry turns these down: whose, and where they come from."""
        source = f" ({self.origin})" if self.origin else ""
        return f"the registry refused the {scheme} credentials for user {self.username}{source}"

    def __post_init__(self) -> None:
        remember(self.password)  # masked wherever imagebot shows text from now on

    @property
    def is_identity_token(self) -> bool:
        return self.username == IDENTITY_TOKEN_USERNAME

    def expired(self, now: datetime, *, margin_seconds: float = 0) -> bool:
        if self.expires_at is None:
            return False
        return (self.expires_at - now).total_seconds() <= margin_seconds


class CredentialProvider(Protocol):
    """Returns credentials for a registry host (``ghcr.io``, ``127.0.0.1:5000``), or None."""

    async def get(self, registry: str, *, now: datetime) -> Credentials | None: ...


class AnonymousProvider:
    """Never has credentials: every registry is accessed anonymously."""

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        return None
