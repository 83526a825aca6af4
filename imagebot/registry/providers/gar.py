"""Google Artifact Registry and Container Registry: an OAuth2 access token as the password.

Registries (``*-docker.pkg.dev``, ``gcr.io``, ``*.gcr.io``) accept the username
``oauth2accesstoken`` with an access token for the ``cloud-platform`` scope. The token comes
from a key file — a service-account key (JWT bearer grant, RFC 7523, signed RS256 and sent
to the key's ``token_uri``) or gcloud's ``authorized_user`` application-default credentials
(refresh-token grant) — or else from the metadata server of GCE/GKE/Cloud Run.

PyJWT (with ``cryptography``) signs the assertion; google-auth would bring a synchronous
``requests`` transport and read ``GCE_METADATA_HOST`` from the process environment, where
httpx keeps the exchange async and every endpoint injectable.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers.env import Environment
from imagebot.registry.providers.oauth import expiring_token, token_request
from imagebot.registry.providers.spec import GarSource

USERNAME = "oauth2accesstoken"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_METADATA_HOST = "metadata.google.internal"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
_ASSERTION_LIFETIME = timedelta(hours=1)  # the maximum Google accepts
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class GarProvider:
    """Access tokens for Google registries from a key file or the metadata server."""

    def __init__(
        self, source: GarSource, environment: Environment, http: httpx.AsyncClient | None
    ) -> None:
        self._source = source
        self._environment = environment
        self._http = http

    def __repr__(self) -> str:
        return f"GarProvider(key_file={self._source.key_file!r})"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        key_file = self._key_file()
        if key_file is None:
            body, what = await self._from_metadata(registry)
        else:
            key = _load_key(key_file, registry)
            body, what = await self._from_key(key, key_file, registry, now)
        token, expires_at = expiring_token(body, registry=registry, what=what, now=now)
        return Credentials(USERNAME, token, expires_at=expires_at)

    def _key_file(self) -> Path | None:
        if self._source.key_file is not None:
            return self._environment.path(self._source.key_file)
        configured = self._environment.get("GOOGLE_APPLICATION_CREDENTIALS")
        if configured is not None:
            return self._environment.path(configured)
        gcloud_dir = self._environment.get("CLOUDSDK_CONFIG")
        well_known = (
            self._environment.path(gcloud_dir)
            if gcloud_dir
            else self._environment.home / ".config" / "gcloud"
        ) / "application_default_credentials.json"
        return well_known if well_known.is_file() else None

    async def _from_metadata(self, registry: str) -> tuple[dict[str, Any], str]:
        host = (
            self._source.metadata_host
            or self._environment.get("GCE_METADATA_HOST")
            or DEFAULT_METADATA_HOST
        )
        base = host if "://" in host else f"http://{host}"
        what = "GCP metadata server token"
        body = await token_request(
            self._http,
            "GET",
            base.rstrip("/") + METADATA_TOKEN_PATH,
            registry=registry,
            what=what,
            headers={"Metadata-Flavor": "Google"},
        )
        return body, what

    async def _from_key(
        self, key: dict[str, Any], path: Path, registry: str, now: datetime
    ) -> tuple[dict[str, Any], str]:
        kind = key.get("type")
        token_uri = str(key.get("token_uri") or DEFAULT_TOKEN_URI)
        if kind == "service_account":
            what = f"GCP service-account token exchange at {token_uri}"
            try:
                assertion = jwt.encode(
                    {
                        "iss": key["client_email"],
                        "scope": SCOPE,
                        "aud": token_uri,
                        "iat": int(now.timestamp()),
                        "exp": int((now + _ASSERTION_LIFETIME).timestamp()),
                    },
                    key["private_key"],
                    algorithm="RS256",
                    headers={"kid": str(key.get("private_key_id", ""))},
                )
            except (KeyError, ValueError, TypeError, jwt.PyJWTError) as exc:
                raise AuthError(
                    f"GCP key file {path}: not a usable service-account key ({type(exc).__name__})",
                    registry=registry,
                ) from exc
            data = {"grant_type": _JWT_BEARER, "assertion": assertion}
        elif kind == "authorized_user":
            what = f"GCP user refresh-token exchange at {token_uri}"
            try:
                data = {
                    "grant_type": "refresh_token",
                    "client_id": key["client_id"],
                    "client_secret": key["client_secret"],
                    "refresh_token": key["refresh_token"],
                }
            except KeyError as exc:
                raise AuthError(
                    f"GCP key file {path}: authorized_user credentials lack {exc.args[0]}",
                    registry=registry,
                ) from exc
        else:
            raise AuthError(
                f"GCP key file {path}: credential type {kind!r} is not supported "
                "(use a service_account key, authorized_user credentials or the metadata server)",
                registry=registry,
            )
        body = await token_request(
            self._http, "POST", token_uri, registry=registry, what=what, data=data
        )
        return body, what


def _load_key(path: Path, registry: str) -> dict[str, Any]:
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthError(
            f"GCP key file {path}: cannot read: {exc.strerror or exc}", registry=registry
        ) from exc
    except ValueError as exc:
        raise AuthError(f"GCP key file {path}: not valid JSON", registry=registry) from exc
    if not isinstance(key, dict):
        raise AuthError(f"GCP key file {path}: expected a JSON object", registry=registry)
    return key
