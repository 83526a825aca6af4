"""Registry authentication as an ``httpx.Auth`` flow: challenges, Basic, and Bearer tokens.

The Bearer flow is distribution's token authentication: the registry answers 401 with
``Bearer realm=…,service=…,scope=…``; we ask the realm for a token for the repository's
``repository:NAME:pull`` scope (with Basic credentials if we have any) and retry. Tokens are
cached per (registry, scope) until ``expires_in`` runs out, so a scan asks once per
repository, and a token that expires mid-scan is fetched again once, not per request. The
flow yields its token requests to the client, so they pass the registry's politeness
(limits, retries) like any other request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

import anyio
import httpx

from imagebot.errors import AuthError
from imagebot.registry.credentials import CredentialProvider, Credentials
from imagebot.registry.limits import TOKEN_REQUEST, same_origin

#: The token spec: "If expires_in is not given, a default of 60 seconds should be assumed".
DEFAULT_TOKEN_SECONDS = 60
#: Refresh this long before expiry so a token does not run out between check and use.
REFRESH_MARGIN = timedelta(seconds=10)
#: client_id sent with OAuth2 token requests, as the distribution token spec requires.
OAUTH_CLIENT_ID = "imagebot"

_TOKEN68 = re.compile(r"\s*([A-Za-z0-9._~+/-]+=*)\s*(?:,|$)")
_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*')
_REPOSITORY_PATH = re.compile(r"^/v2/(.+)/(?:tags|manifests|blobs)/")
_SCHEME = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: ``scheme`` lower-cased."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (RFC 9110 §11.6.1): several challenges, quoted strings
    with escapes, commas inside quotes (a scope list ``"repository:a:pull,push"``)."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        if header[pos] in ", \t":
            pos += 1
            continue
        m = _SCHEME.match(header, pos)
        if not m:
            break
        challenge = Challenge(scheme=m.group(1).lower())
        pos = m.end()
        while pos < len(header):
            p = _PARAM.match(header, pos)
            if not p:
                t = _TOKEN68.match(header, pos) if not challenge.params else None
                if t and "=" not in header[pos : t.end()].rstrip("=,\t "):
                    pos = t.end()
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            if p.group(2) is not None:
                value = re.sub(r"\\(.)", r"\1", value)
            challenge.params[p.group(1).lower()] = value
            pos = p.end()
            if pos < len(header) and header[pos] == ",":
                pos += 1
        out.append(challenge)
    return out


def pull_scope(path: str) -> str:
    return f"repository:{path}:pull"


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class TokenResponse(TypedDict, total=False):
    token: str
    access_token: str
    expires_in: int
    issued_at: str


@dataclass(frozen=True, slots=True)
class Token:
    value: str = field(repr=False)
    expires_at: datetime


class RegistryAuth(httpx.Auth):
    """What a registry wants (none, Basic or Bearer), and the tokens we hold for it."""

    def __init__(
        self,
        registry: str,
        base_url: str,
        *,
        credentials: CredentialProvider,
        clock: Callable[[], datetime],
    ) -> None:
        self.registry = registry
        self._base_url = base_url
        self._credentials = credentials
        self._clock = clock
        self._scheme: str | None = None  # learned from the first 401
        self._bearer: Challenge | None = None
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self.token_fetches = 0

    @property
    def realm(self) -> str | None:
        """The token realm named by the registry's own Bearer challenge, once seen."""
        return self._bearer.params.get("realm") if self._bearer is not None else None

    async def _creds(self) -> Credentials | None:
        try:
            return await self._credentials.get(self.registry, now=self._clock())
        except AuthError:
            raise
        except Exception as exc:  # a provider's own failure names the registry for the user
            raise AuthError(f"cannot get credentials: {exc}", registry=self.registry) from exc

    def _valid(self, scope: str) -> str | None:
        """The Bearer header of a token for ``scope`` that is still good, if we hold one."""
        token = self._tokens.get(scope)
        if token is not None and self._clock() < token.expires_at - REFRESH_MARGIN:
            return f"Bearer {token.value}"
        return None

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        match = _REPOSITORY_PATH.match(request.url.path)
        scope = pull_scope(match.group(1)) if match else "registry:catalog:*"
        header: str | None = None
        refresh = False
        if self._scheme == "bearer":
            # A token we hold that has expired is fetched anew before sending, not after a 401.
            header = self._valid(scope)
            refresh = header is None and scope in self._tokens
        elif self._scheme == "basic":
            creds = await self._creds()
            header = basic_header(creds) if creds else None
        answered = False
        while True:
            if refresh:
                stale = self._tokens.get(scope)
                async with self._locks.setdefault(scope, anyio.Lock()):
                    current = self._tokens.get(scope)
                    # Someone else fetched while we waited: one refresh, not one each.
                    if current is None or current is stale:
                        creds = await self._creds()
                        answer = yield self._token_request(scope, creds)
                        current = self._tokens[scope] = self._token(answer, creds)
                    header = f"Bearer {current.value}"
            if header is not None:
                request.headers["Authorization"] = header
            response = yield request
            if response.status_code != 401:
                return
            if not same_origin(self._base_url, response.url):
                # A challenge from wherever the registry redirected us is not the registry's:
                # answering it would hand our credentials to that host.
                raise AuthError(
                    f"redirected to {response.url.netloc.decode('ascii')}, which asks for"
                    " credentials; imagebot sends credentials only to the registry itself and"
                    " the token realm it names",
                    registry=self.registry,
                )
            if answered:
                again = "a token refresh" if self._scheme == "bearer" else "login"
                raise AuthError(f"still unauthorized (401) after {again}", registry=self.registry)
            answered = True
            header, refresh = await self._answer(response, scope, sent=header)

    async def _answer(
        self, response: httpx.Response, scope: str, *, sent: str | None
    ) -> tuple[str | None, bool]:
        """Read a 401's challenge: (the header to retry with, whether a token is needed)."""
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None and "realm" in bearer.params:
            self._scheme, self._bearer = "bearer", bearer
            valid = self._valid(scope)
            # Another request fetched a token while this one was in flight: use it, so
            # a burst of concurrent 401s costs one token request, not one each.
            if valid is not None and valid != sent:
                return valid, False
            return None, True
        if basic is not None:
            self._scheme = "basic"
            if sent is not None and sent.startswith("Basic "):
                # Refused: the secret may have been rotated since it was cached. Ask its
                # source once more; the same answer again is a refusal.
                getattr(self._credentials, "forget", lambda registry: None)(self.registry)
                creds = await self._creds()
                if creds is None or basic_header(creds) == sent:
                    raise AuthError("credentials refused (401)", registry=self.registry)
                return basic_header(creds), False
            creds = await self._creds()
            if creds is None:
                raise AuthError(
                    "the registry requires credentials (Basic) and none are configured",
                    registry=self.registry,
                )
            return basic_header(creds), False
        raise AuthError(
            f"401 with an unsupported challenge {response.headers.get('www-authenticate')!r}",
            registry=self.registry,
        )

    def _token_request(self, scope: str, creds: Credentials | None) -> httpx.Request:
        challenge = self._bearer
        if challenge is None:
            raise AuthError("no Bearer challenge to answer", registry=self.registry)
        params = {k: v for k, v in (("service", challenge.params.get("service")),) if v}
        params["scope"] = scope
        # No redirects: a token request carries credentials (a refresh token in a POST body
        # survives a 307), so it goes to the realm and nowhere else.
        extensions = {TOKEN_REQUEST: True}
        self.token_fetches += 1
        try:
            if creds is not None and creds.is_identity_token:
                # An identity token (Docker config `identitytoken`, e.g. from `az acr login`
                # or `docker login` with OAuth) is an OAuth2 refresh token: exchange it with
                # the POST grant of the distribution token spec, never send it as Basic.
                form = {
                    **params,
                    "grant_type": "refresh_token",
                    "refresh_token": creds.password,
                    "client_id": OAUTH_CLIENT_ID,
                }
                return httpx.Request(
                    "POST", challenge.params["realm"], data=form, extensions=extensions
                )
            headers = {"Authorization": basic_header(creds)} if creds is not None else {}
            return httpx.Request(
                "GET", challenge.params["realm"], params=params, headers=headers,
                extensions=extensions,
            )  # fmt: skip
        except httpx.InvalidURL:
            raise AuthError(
                f"invalid token realm {challenge.params['realm']!r}", registry=self.registry
            ) from None

    def _token(self, response: httpx.Response, creds: Credentials | None) -> Token:
        identity = creds is not None and creds.is_identity_token
        # OAuth2 answers a bad refresh token with 400 invalid_grant (RFC 6749 §5.2).
        if response.status_code in (401, 403) or (identity and response.status_code == 400):
            who = (
                "the identity token"
                if identity
                else (f"as {creds.username!r}" if creds else "anonymously")
            )
            raise AuthError(
                f"token endpoint refused {who} (HTTP {response.status_code})",
                registry=self.registry,
            )
        if response.status_code != 200:
            raise AuthError(
                f"token endpoint answered HTTP {response.status_code}", registry=self.registry
            )
        try:
            body: TokenResponse = response.json()
        except ValueError:
            raise AuthError("token endpoint sent invalid JSON", registry=self.registry) from None
        value = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthError("token endpoint sent no token", registry=self.registry)
        seconds = body.get("expires_in")
        if not isinstance(seconds, int | float) or seconds <= 0:
            seconds = DEFAULT_TOKEN_SECONDS
        # Count from our clock, not issued_at: the two clocks may disagree, and a token
        # that looks expired to us is only refreshed a little early.
        return Token(value=value, expires_at=self._clock() + timedelta(seconds=seconds))
