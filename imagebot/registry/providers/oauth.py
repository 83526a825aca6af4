"""The HTTP side of cloud token exchanges: one request, errors named, tokens never logged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx

from imagebot.errors import AuthError

EXCHANGE_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@asynccontextmanager
async def client(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The injected client, or a short-lived one: exchanges happen about once an hour."""
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT) as own:
        yield own


async def token_request(
    http: httpx.AsyncClient | None,
    method: str,
    url: str,
    *,
    registry: str,
    what: str,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Send one token request and return its JSON object, or raise an AuthError that says
    which exchange failed, with the status and the server's own error code and text."""
    try:
        async with client(http) as session:
            response = await session.request(method, url, data=data, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise AuthError(f"{what} failed: {url} unreachable: {exc}", registry=registry) from exc
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        raise AuthError(
            f"{what} failed: {response.status_code} {_error_detail(body, response.text)}".rstrip(),
            registry=registry,
        )
    if not isinstance(body, dict):
        raise AuthError(f"{what} failed: answer is not a JSON object", registry=registry)
    return body


def _error_detail(body: Any, text: str) -> str:
    if isinstance(body, dict):
        if "error" in body:  # OAuth 2.0 (RFC 6749 §5.2): Google, Entra ID
            error = body["error"]
            if isinstance(error, dict):  # Azure IMDS / Google APIs style
                return f"{error.get('code', '')}: {error.get('message', '')}"
            description = body.get("error_description", "")
            return f"{error}: {description}".rstrip(": ")
        errors = body.get("errors")  # the registry error format ACR uses
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return f"{errors[0].get('code', '')}: {errors[0].get('message', '')}"
    return " ".join(text.split())[:200]


def expiring_token(
    body: Mapping[str, Any], *, registry: str, what: str, now: datetime
) -> tuple[str, datetime]:
    """The access token and when it expires (``expires_in``: Azure IMDS sends it as text)."""
    token = access_token(body, registry=registry, what=what)
    try:
        return token, now + timedelta(seconds=float(body["expires_in"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise AuthError(
            f"{what} failed: answer has no valid expires_in", registry=registry
        ) from exc


def access_token(
    body: Mapping[str, Any], *, registry: str, what: str, key: str = "access_token"
) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise AuthError(f"{what} failed: answer has no {key}", registry=registry)
    return value
