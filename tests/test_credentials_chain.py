"""Routing configured sources to registries, the fallback chain, caching and secrecy."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.chain import CachingProvider, ChainProvider
from imagebot.registry.providers.spec import BasicSource, CredentialSource

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 1, 1, tzinfo=UTC)


class ScriptedProvider:
    """A provider whose answers the test scripts; counts how often it was asked."""

    def __init__(self, *answers: Credentials | Exception | None, gate: anyio.Event | None = None):
        self.answers = list(answers)
        self.calls = 0
        self.gate = gate

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _basic(user: str) -> BasicSource:
    return BasicSource(type="basic", username=user, password=f"{user}-pw")


async def test_exact_key_beats_glob_and_globs_go_in_order(tmp_path: Path) -> None:
    """An exact host key wins over globs; among globs the first listed that matches wins."""
    sources: dict[str, CredentialSource] = {
        "*.example.com": _basic("wild"),
        "*.acme.example.com": _basic("never"),
        "a.acme.example.com": _basic("exact"),
        "127.0.0.1:5000": _basic("local"),
    }
    provider = provider_for(sources, env={}, home=tmp_path, docker_config=False)
    assert (await provider.get("a.acme.example.com", now=NOW)) == Credentials("exact", "exact-pw")
    assert (await provider.get("b.acme.example.com", now=NOW)) == Credentials("wild", "wild-pw")
    assert (await provider.get("127.0.0.1:5000", now=NOW)) == Credentials("local", "local-pw")
    assert await provider.get("127.0.0.1:5001", now=NOW) is None


async def test_docker_hub_key_aliases(tmp_path: Path) -> None:
    """A source keyed ``docker.io`` also serves ``index.docker.io`` and vice versa."""
    provider = provider_for(
        {"index.docker.io": _basic("hub")}, env={}, home=tmp_path, docker_config=False
    )
    assert await provider.get("docker.io", now=NOW) == Credentials("hub", "hub-pw")


async def test_docker_config_is_the_fallback(tmp_path: Path) -> None:
    """Registries without a configured source, or whose source has nothing, use config.json."""
    (tmp_path / ".docker").mkdir()
    auth = base64.b64encode(b"from:config").decode()
    (tmp_path / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"quay.io": {"auth": auth}, "ghcr.io": {"auth": auth}}})
    )
    provider = provider_for({"ghcr.io": _basic("explicit")}, env={}, home=tmp_path)
    assert await provider.get("ghcr.io", now=NOW) == Credentials("explicit", "explicit-pw")
    assert await provider.get("quay.io", now=NOW) == Credentials("from", "config")
    off = provider_for({}, env={}, home=tmp_path, docker_config=False)
    assert await off.get("quay.io", now=NOW) is None


async def test_chain_returns_first_answer() -> None:
    """The chain stops at the first provider with credentials."""
    first, second, third = (
        ScriptedProvider(None),
        ScriptedProvider(Credentials("b", "x")),
        ScriptedProvider(Credentials("c", "y")),
    )
    assert await ChainProvider([first, second, third]).get("r", now=NOW) == Credentials("b", "x")
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)


async def test_short_lived_credentials_are_refreshed_before_expiry() -> None:
    """A 12 h token is reused until 30 min before it expires, then fetched anew."""
    expires = NOW + timedelta(hours=12)
    inner = ScriptedProvider(
        Credentials("AWS", "one", expires_at=expires),
        Credentials("AWS", "two", expires_at=expires + timedelta(hours=11)),
    )
    cache = CachingProvider(inner)
    assert (await cache.get("ecr", now=NOW)).password == "one"  # type: ignore[union-attr]
    just_before = expires - timedelta(minutes=31)
    assert (await cache.get("ecr", now=just_before)).password == "one"  # type: ignore[union-attr]
    assert inner.calls == 1
    in_margin = expires - timedelta(minutes=29)
    assert (await cache.get("ecr", now=in_margin)).password == "two"  # type: ignore[union-attr]
    assert inner.calls == 2


async def test_margin_is_capped_at_half_the_lifetime() -> None:
    """A token living 10 minutes is reused for 5, not refetched on every lookup."""
    inner = ScriptedProvider(Credentials("u", "p", expires_at=NOW + timedelta(minutes=10)))
    cache = CachingProvider(inner)
    await cache.get("r", now=NOW)
    await cache.get("r", now=NOW + timedelta(minutes=4, seconds=59))
    assert inner.calls == 1
    await cache.get("r", now=NOW + timedelta(minutes=5))
    assert inner.calls == 2


async def test_concurrent_lookups_share_one_exchange() -> None:
    """Fifty concurrent lookups for one registry cause a single call to the slow source."""
    gate = anyio.Event()
    inner = ScriptedProvider(Credentials("u", "p", expires_at=NOW + timedelta(hours=1)), gate=gate)
    cache = CachingProvider(inner)
    results: list[Credentials | None] = []

    async def one() -> None:
        results.append(await cache.get("r", now=NOW))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert inner.calls == 1
    assert results == [Credentials("u", "p", expires_at=NOW + timedelta(hours=1))] * 50


async def test_failed_refresh_keeps_the_still_valid_token() -> None:
    """If renewal fails inside the margin, the unexpired token is used and renewal retried."""
    expires = NOW + timedelta(hours=12)
    inner = ScriptedProvider(
        Credentials("AWS", "one", expires_at=expires),
        AuthError("ECR GetAuthorizationToken failed: 503", registry="r"),
        Credentials("AWS", "two", expires_at=expires + timedelta(hours=12)),
    )
    cache = CachingProvider(inner)
    await cache.get("r", now=NOW)
    in_margin = expires - timedelta(minutes=10)
    with capture_logs() as logs:
        assert (await cache.get("r", now=in_margin)).password == "one"  # type: ignore[union-attr]
    assert logs[0]["event"] == "credentials_refresh_failed"
    assert (await cache.get("r", now=in_margin)).password == "two"  # type: ignore[union-attr]
    assert inner.calls == 3


async def test_failure_after_expiry_is_raised() -> None:
    """Once the old token has expired, a failed renewal is the caller's error."""
    inner = ScriptedProvider(
        Credentials("AWS", "one", expires_at=NOW + timedelta(hours=1)),
        AuthError("exchange failed", registry="r"),
    )
    cache = CachingProvider(inner)
    await cache.get("r", now=NOW)
    with pytest.raises(AuthError, match=r"^r: exchange failed"):
        await cache.get("r", now=NOW + timedelta(hours=2))


def test_credentials_never_show_their_secret() -> None:
    """repr and str of Credentials carry the username but never the password."""
    creds = Credentials("AWS", "hunter2-very-secret", expires_at=NOW)
    assert "hunter2" not in repr(creds)
    assert "hunter2" not in str(creds)
    assert "AWS" in repr(creds)


async def test_logs_and_provider_reprs_carry_no_secret(tmp_path: Path) -> None:
    """Looking up and refreshing credentials logs nothing that contains the secret."""
    secret = "hunter2-very-secret"
    (tmp_path / "pw").write_text(secret)
    provider = provider_for(
        {"ghcr.io": BasicSource(type="basic", username="u", password_file=str(tmp_path / "pw"))},
        env={"PW": secret},
        home=tmp_path,
        docker_config=False,
    )
    cache = CachingProvider(
        ScriptedProvider(Credentials("u", secret, expires_at=NOW + timedelta(hours=1)))
    )
    with capture_logs() as logs:
        await provider.get("ghcr.io", now=NOW)
        await cache.get("x", now=NOW)
    assert logs, "the refresh is logged"
    assert secret not in repr(logs)
    assert secret not in repr(provider)
