"""Registry authentication against real registries: Basic (htpasswd) and Bearer tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from imagebot.cli.tags import list_each
from imagebot.errors import AuthError
from imagebot.registry import RegistryClient
from imagebot.registry.auth import Challenge, RegistryAuth, parse_challenges
from imagebot.registry.credentials import IDENTITY_TOKEN_USERNAME, Credentials
from tests.conftest import BASIC_USERS, TOKEN_USERS
from tests.support.clock import FakeClock
from tests.support.faultproxy import Seen, run_fault_proxy
from tests.support.registry import ChallengeAuth, Registry, push_image
from tests.support.tokenserver import SERVICE, TokenServer, run_token_registry

BASIC_USER, BASIC_PASSWORD = next(iter(BASIC_USERS.items()))
TOKEN_USER, TOKEN_PASSWORD = next(iter(TOKEN_USERS.items()))


class StaticProvider:
    """Fixed credentials per registry host."""

    def __init__(self, by_registry: dict[str, Credentials]) -> None:
        self._by_registry = dict(by_registry)

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        return self._by_registry.get(registry)


def test_parse_bearer_challenge_with_quoted_commas() -> None:
    """A Bearer challenge's scope keeps the commas inside its quotes."""
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:acme/app:pull,push"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example.com/token",
                "service": "registry.example.com",
                "scope": "repository:acme/app:pull,push",
            },
        )
    ]


def test_parse_several_challenges_and_escapes() -> None:
    """Several challenges in one header are all returned, escaped quotes unescaped."""
    header = 'Basic realm="a \\"quoted\\" realm", Bearer realm="https://t/x",service=reg'
    assert parse_challenges(header) == [
        Challenge("basic", {"realm": 'a "quoted" realm'}),
        Challenge("bearer", {"realm": "https://t/x", "service": "reg"}),
    ]


def test_basic_auth_registry_is_scanned(basic_registry: Registry) -> None:
    """An htpasswd registry is listed with the provider's Basic credentials."""
    push_image(basic_registry, "acme/app", "1.0", auth=httpx.BasicAuth(BASIC_USER, BASIC_PASSWORD))
    creds = StaticProvider({basic_registry.host: Credentials(BASIC_USER, BASIC_PASSWORD)})

    async def main() -> list[str]:
        async with RegistryClient(credentials=creds) as client:
            return await client.list_tags(f"{basic_registry.host}/acme/app")

    assert anyio.run(main) == ["1.0"]


def test_basic_auth_wrong_password_is_auth_error(basic_registry: Registry) -> None:
    """Refused Basic credentials give an AuthError naming the registry, never the password."""
    push_image(basic_registry, "acme/app", "1.0", auth=httpx.BasicAuth(BASIC_USER, BASIC_PASSWORD))
    creds = StaticProvider({basic_registry.host: Credentials(BASIC_USER, "not-the-password")})

    async def main() -> None:
        async with RegistryClient(credentials=creds) as client:
            await client.list_tags(f"{basic_registry.host}/acme/app")

    with pytest.raises(AuthError) as info:
        anyio.run(main)
    assert basic_registry.host in str(info.value)
    assert "not-the-password" not in str(info.value)


def test_basic_auth_without_credentials_is_auth_error(basic_registry: Registry) -> None:
    """A Basic challenge with no credentials configured says so."""

    async def main() -> None:
        async with RegistryClient() as client:
            await client.list_tags(f"{basic_registry.host}/acme/app")

    with pytest.raises(AuthError, match="requires credentials"):
        anyio.run(main)


def test_token_registry_is_scanned_with_one_token_per_repository(
    token_registry: tuple[Registry, TokenServer],
) -> None:
    """A token-auth registry is listed; each repository's pull token is fetched once and reused."""
    reg, tokens = token_registry
    push_auth = ChallengeAuth(TOKEN_USER, TOKEN_PASSWORD)
    for repo in ("acme/a", "acme/b"):
        for tag in ("1", "2", "3"):
            push_image(reg, repo, tag, auth=push_auth)
    tokens.requests.clear()
    creds = StaticProvider({reg.host: Credentials(TOKEN_USER, TOKEN_PASSWORD)})

    async def main() -> dict[str, list[str]]:
        async with RegistryClient(credentials=creds) as client:
            out = {}
            for repo in ("acme/a", "acme/b"):
                out[repo] = sorted(await client.list_tags(f"{reg.host}/{repo}"))
                for tag in ("1", "2", "3"):
                    await client.digest(f"{reg.host}/{repo}", tag)
            return out

    assert anyio.run(main) == {"acme/a": ["1", "2", "3"], "acme/b": ["1", "2", "3"]}
    assert [(r.username, r.scopes, r.service) for r in tokens.requests] == [
        (TOKEN_USER, ["repository:acme/a:pull"], SERVICE),
        (TOKEN_USER, ["repository:acme/b:pull"], SERVICE),
    ]


def test_token_expiring_mid_scan_is_refreshed_once(tmp_path: Path) -> None:
    """When the token's expires_in passes mid-scan, concurrent requests share one refresh."""
    clock = FakeClock(datetime(2025, 3, 1, tzinfo=UTC))
    with run_token_registry(tmp_path, users=TOKEN_USERS, expires_in=300) as (reg, tokens):
        tags = [f"1.{i}.0" for i in range(12)]
        for tag in tags:
            push_image(reg, "acme/app", tag, auth=ChallengeAuth(TOKEN_USER, TOKEN_PASSWORD))
        tokens.requests.clear()

        def rule(seen: Seen) -> None:
            # The 5th registry request arrives after the token's advertised lifetime.
            if seen.number == 5:
                clock.advance(301)

        with run_fault_proxy(reg.url, rule) as proxy:
            creds = StaticProvider({proxy.host: Credentials(TOKEN_USER, TOKEN_PASSWORD)})

            async def main() -> dict[str, str]:
                digests: dict[str, str] = {}
                async with RegistryClient(credentials=creds, clock=clock.now) as client:
                    repo = f"{proxy.host}/acme/app"
                    for tag in tags[:4]:
                        digests[tag] = await client.digest(repo, tag)

                    async def one(tag: str) -> None:
                        digests[tag] = await client.digest(repo, tag)

                    async with anyio.create_task_group() as tg:
                        for tag in tags[4:]:
                            tg.start_soon(one, tag)
                return digests

            digests = anyio.run(main)
    assert sorted(digests) == sorted(tags)
    assert len(tokens.requests) == 2
    # One 401 to learn the challenge, then every request carried a token.
    statuses = [s for s in proxy.seen if "authorization" not in {k.lower() for k in s.headers}]
    assert len(statuses) == 1


def test_401_after_token_refresh_is_auth_error(tmp_path: Path) -> None:
    """A token that the registry still refuses gives AuthError; other repositories still scan."""
    with run_token_registry(tmp_path, users=TOKEN_USERS, deny={"acme/locked"}) as (reg, _tokens):
        auth = ChallengeAuth(TOKEN_USER, TOKEN_PASSWORD)
        push_image(reg, "acme/open", "1", auth=auth)
        creds = StaticProvider({reg.host: Credentials(TOKEN_USER, TOKEN_PASSWORD)})

        async def main() -> dict[str, object]:
            async with RegistryClient(credentials=creds) as client:
                return dict(
                    await list_each(client, [f"{reg.host}/acme/locked", f"{reg.host}/acme/open"])
                )

        results = anyio.run(main)
    locked = results[f"{reg.host}/acme/locked"]
    assert isinstance(locked, AuthError)
    assert "after a token refresh" in str(locked) and "acme/locked" in str(locked)
    assert results[f"{reg.host}/acme/open"] == ["1"]


def test_token_endpoint_refusing_credentials_is_auth_error(
    token_registry: tuple[Registry, TokenServer],
) -> None:
    """Wrong credentials at the token endpoint give AuthError naming the user, not the secret."""
    reg, _ = token_registry
    creds = StaticProvider({reg.host: Credentials(TOKEN_USER, "wrong-secret")})

    async def main() -> None:
        async with RegistryClient(credentials=creds) as client:
            await client.list_tags(f"{reg.host}/acme/app")

    with pytest.raises(AuthError) as info:
        anyio.run(main)
    assert f"as {TOKEN_USER!r}" in str(info.value) and "wrong-secret" not in str(info.value)


def test_identity_token_is_exchanged_with_the_oauth2_refresh_grant(
    token_registry: tuple[Registry, TokenServer],
) -> None:
    """An identity token (Docker's `<token>` user) is POSTed as a refresh_token grant, not Basic."""
    reg, tokens = token_registry
    push_image(reg, "acme/id", "1.0", auth=ChallengeAuth(TOKEN_USER, TOKEN_PASSWORD))
    tokens.refresh_tokens["refresh-abc"] = TOKEN_USER
    tokens.requests.clear()
    good = StaticProvider({reg.host: Credentials(IDENTITY_TOKEN_USERNAME, "refresh-abc")})
    bad = StaticProvider({reg.host: Credentials(IDENTITY_TOKEN_USERNAME, "stolen")})

    async def tags(creds: StaticProvider) -> list[str]:
        async with RegistryClient(credentials=creds) as client:
            return await client.list_tags(f"{reg.host}/acme/id")

    assert anyio.run(tags, good) == ["1.0"]
    assert [(r.username, r.grant, r.scopes) for r in tokens.requests] == [
        (TOKEN_USER, "refresh_token", ["repository:acme/id:pull"])
    ]
    with pytest.raises(AuthError, match="refused the identity token") as info:
        anyio.run(tags, bad)
    assert "stolen" not in str(info.value)


def test_the_auth_flow_alone_fetches_one_token_and_sends_basic_only_to_the_realm() -> None:
    """RegistryAuth as an httpx.Auth flow on a bare client (httpx.MockTransport): a Bearer
    challenge costs one token request with Basic credentials to the realm, and the token
    then goes up front on every request of that repository."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        seen.append((f"{request.url.host}{request.url.path}", auth))
        if request.url.host == "auth.example":
            assert request.url.params["scope"] == "repository:acme/app:pull"
            return httpx.Response(200, json={"token": "t1", "expires_in": 300})
        if auth != "Bearer t1":
            challenge = 'Bearer realm="https://auth.example/token",service="reg"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, json={"tags": ["1.0"]})

    creds = StaticProvider({"reg.example": Credentials("u", "p")})
    auth = RegistryAuth(
        "reg.example", "https://reg.example", credentials=creds, clock=FakeClock().now
    )

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as c:
            url = "https://reg.example/v2/acme/app/tags/list"
            return [(await c.get(url)).status_code for _ in range(2)]

    assert anyio.run(main) == [200, 200]
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    assert seen == [
        ("reg.example/v2/acme/app/tags/list", None),
        ("auth.example/token", basic),
        ("reg.example/v2/acme/app/tags/list", "Bearer t1"),
        ("reg.example/v2/acme/app/tags/list", "Bearer t1"),
    ]
    assert auth.token_fetches == 1
