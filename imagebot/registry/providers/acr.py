"""Azure Container Registry: an Entra ID token exchanged for an ACR refresh token.

First an Entra ID (AAD) access token — client credentials with a secret, workload identity
(the federated token file AKS projects into the pod, sent as a client assertion), or a
managed identity from the instance metadata service. Then ``POST https://<registry>/oauth2/
exchange`` with ``grant_type=access_token``, ``service``, ``tenant`` and ``access_token``
returns a ``refresh_token``, which the registry accepts as the password of the user
``00000000-0000-0000-0000-000000000000`` (what ``az acr login`` stores).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from imagebot.core.reference import is_loopback_host
from imagebot.errors import AuthError
from imagebot.redact import remember
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers.env import Environment, read_secret_file
from imagebot.registry.providers.oauth import access_token, expiring_token, token_request
from imagebot.registry.providers.spec import AcrSource

USERNAME = "00000000-0000-0000-0000-000000000000"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_IMDS = "http://169.254.169.254"
IMDS_TOKEN_PATH = "/metadata/identity/oauth2/token"
_CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AcrProvider:
    """ACR refresh tokens obtained through Entra ID."""

    def __init__(
        self, source: AcrSource, environment: Environment, http: httpx.AsyncClient | None
    ) -> None:
        self._source = source
        self._environment = environment
        self._http = http

    def __repr__(self) -> str:
        return f"AcrProvider(tenant_id={self._source.tenant_id!r})"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        entra_token, entra_expires, tenant = await self._entra_token(registry, now)
        refresh_token = await self._exchange(registry, entra_token, tenant)
        expires_at = _jwt_expiry(refresh_token) or entra_expires
        return Credentials(USERNAME, refresh_token, expires_at=expires_at)

    async def _entra_token(self, registry: str, now: datetime) -> tuple[str, datetime, str | None]:
        env = self._environment
        tenant = self._source.tenant_id or env.get("AZURE_TENANT_ID")
        client_id = self._source.client_id or env.get("AZURE_CLIENT_ID")
        secret = self._client_secret(registry)
        federated_file = self._source.federated_token_file or env.get("AZURE_FEDERATED_TOKEN_FILE")
        if secret is not None or federated_file is not None:
            if tenant is None or client_id is None:
                raise AuthError(
                    "ACR: Entra ID sign-in needs tenant_id and client_id "
                    "(or AZURE_TENANT_ID and AZURE_CLIENT_ID)",
                    registry=registry,
                )
            form = {"grant_type": "client_credentials", "client_id": client_id}
            form["scope"] = self._source.scope
            if secret is not None:
                form["client_secret"] = secret
                what = "Entra ID client-secret sign-in"
            else:
                assert federated_file is not None
                form["client_assertion_type"] = _CLIENT_ASSERTION_TYPE
                # AKS rotates the projected token: read it for every sign-in.
                form["client_assertion"] = remember(
                    read_secret_file(
                        env.path(federated_file), registry=registry, what="ACR federated token"
                    )
                )
                what = "Entra ID workload-identity sign-in"
            authority = self._source.authority_host or env.get("AZURE_AUTHORITY_HOST")
            base = _with_scheme(authority or DEFAULT_AUTHORITY).rstrip("/")
            body = await token_request(
                self._http,
                "POST",
                f"{base}/{tenant}/oauth2/v2.0/token",
                registry=registry,
                what=what,
                data=form,
            )
        elif self._source.managed_identity:
            what = "Azure managed-identity token (IMDS)"
            imds = _with_scheme(
                env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or DEFAULT_IMDS, "http"
            )
            params = {
                "api-version": "2018-02-01",
                "resource": self._source.scope.removesuffix(".default"),
            }
            if client_id is not None:
                params["client_id"] = client_id
            body = await token_request(
                self._http,
                "GET",
                imds.rstrip("/") + IMDS_TOKEN_PATH,
                registry=registry,
                what=what,
                params=params,
                headers={"Metadata": "true"},
            )
        else:
            raise AuthError(
                "ACR: no Azure credentials (client secret, federated token file, "
                "or managed identity)",
                registry=registry,
            )
        return (*expiring_token(body, registry=registry, what=what, now=now), tenant)

    def _client_secret(self, registry: str) -> str | None:
        if self._source.client_secret_env is not None:
            value = self._environment.get(self._source.client_secret_env)
            if value is None:
                raise AuthError(
                    f"ACR: environment variable {self._source.client_secret_env} is not set",
                    registry=registry,
                )
            return value
        if self._source.client_secret_file is not None:
            return remember(
                read_secret_file(
                    self._environment.path(self._source.client_secret_file),
                    registry=registry,
                    what="ACR client secret",
                )
            )
        return self._environment.get("AZURE_CLIENT_SECRET")

    async def _exchange(self, registry: str, entra_token: str, tenant: str | None) -> str:
        url = self._source.exchange_url or (
            f"{'http' if is_loopback_host(registry) else 'https'}://{registry}/oauth2/exchange"
        )
        form = {"grant_type": "access_token", "service": registry, "access_token": entra_token}
        if tenant is not None:
            form["tenant"] = tenant
        what = "ACR refresh-token exchange"
        body = await token_request(self._http, "POST", url, registry=registry, what=what, data=form)
        return access_token(body, registry=registry, what=what, key="refresh_token")


def _with_scheme(host: str, scheme: str = "https") -> str:
    return host if "://" in host else f"{scheme}://{host}"


def _jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, read without verifying it: only to know when to renew."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload: Any = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if not isinstance(exp, int | float):
        return None
    return datetime.fromtimestamp(exp, UTC)
