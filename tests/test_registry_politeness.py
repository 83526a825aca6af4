"""Politeness: rate-limit waits, retries with backoff, token bucket — all on recorded sleeps."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import httpx
import pytest

from imagebot.cli.tags import list_each
from imagebot.errors import AuthError, RateLimited, RegistryError
from imagebot.registry import RegistriesSettings, RegistryClient, RegistrySettings, RetryPolicy
from imagebot.registry.limits import TOKEN_REQUEST
from imagebot.registry.politeness import (
    PoliteTransport,
    TokenBucket,
    docker_hub_quota_window,
    retry_after,
)
from tests.support.clock import FakeClock
from tests.support.faultproxy import Respond, Seen, every_nth, run_fault_proxy
from tests.support.registry import Registry, push_image

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _pairs(expected: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(repo, tag) for repo, tags in expected.items() for tag in tags]


def _response(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_retry_after_seconds_and_http_date() -> None:
    """Retry-After is read as delta-seconds or as an HTTP date relative to the clock."""
    assert retry_after(_response({"Retry-After": "2"}), NOW) == 2.0
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert retry_after(_response({"Retry-After": later}), NOW) == 90.0
    assert retry_after(_response({"X-RateLimit-Reset": str(NOW.timestamp() + 30)}), NOW) == 30.0
    assert retry_after(_response({"Retry-After": "soon"}), NOW) is None


def test_docker_hub_quota_window_only_when_exhausted() -> None:
    """Docker Hub's ratelimit-remaining gives a wait only when the pull quota is used up."""
    assert docker_hub_quota_window(_response({"ratelimit-remaining": "0;w=21600"})) == 21600
    assert docker_hub_quota_window(_response({"ratelimit-remaining": "76;w=21600"})) is None
    assert docker_hub_quota_window(_response({})) is None


def test_backoff_is_jittered_exponential_and_capped() -> None:
    """Each backoff lies between half and all of base·2^n, never above the cap."""
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(7)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        for _ in range(20):
            assert ceiling / 2 <= policy.backoff(retry, rng) <= ceiling


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    """Ten acquisitions at 2/s with a burst of 4 wait 0.5 s for each of the six beyond the burst."""
    clock = FakeClock(NOW)
    bucket = TokenBucket(2.0, 4, clock=clock.now, sleep=clock.sleep)

    async def main() -> None:
        for _ in range(10):
            await bucket.acquire()

    anyio.run(main)
    assert clock.sleeps == pytest.approx([0.5] * 6)
    assert clock.now() - NOW == timedelta(seconds=3)


def test_every_third_request_429_scan_of_50_repositories(registry: Registry) -> None:
    """With every third request answered 429 + Retry-After: 2, a scan of 50 repositories
    returns exactly the pushed tags and sleeps exactly 2 s once for every 429."""
    expected = {
        f"team/app{i}": [f"{i}.0.0", f"{i}.1.0"] if i % 2 else [f"{i}.0.0"] for i in range(50)
    }
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda rt: push_image(registry, *rt), _pairs(expected)))
    clock = FakeClock(NOW)
    with run_fault_proxy(registry.url, every_nth(3, Respond(429, {"Retry-After": "2"}))) as proxy:

        async def main() -> dict[str, list[str] | RegistryError]:
            async with RegistryClient(
                clock=clock.now, sleep=clock.sleep, retry=RetryPolicy(attempts=20)
            ) as client:
                return await list_each(client, [f"{proxy.host}/{name}" for name in expected])

        results = anyio.run(main)
    got = {k.removeprefix(f"{proxy.host}/"): sorted(v) for k, v in results.items()}  # type: ignore[arg-type]
    assert got == expected
    throttled = [s for s in proxy.seen if s.number % 3 == 0]
    assert len(proxy.seen) == 50 + len(throttled)
    assert clock.sleeps == [2.0] * len(throttled)


def test_docker_hub_quota_exhausted_fails_fast_and_blocks_registry(registry: Registry) -> None:
    """A 429 with ratelimit-remaining 0;w=21600 raises RateLimited at once (no 6-hour sleep)
    and later calls to that registry fail without a request until the window passes."""
    push_image(registry, "acme/app", "1")
    quota = Respond(429, {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"})
    clock = FakeClock(NOW)
    with run_fault_proxy(registry.url, lambda seen: quota) as proxy:

        async def main() -> list[RegistryError | list[str]]:
            async with RegistryClient(clock=clock.now, sleep=clock.sleep) as client:
                out: list[RegistryError | list[str]] = []
                for _ in range(2):
                    try:
                        out.append(await client.list_tags(f"{proxy.host}/acme/app"))
                    except RegistryError as exc:
                        out.append(exc)
                return out

        first, second = anyio.run(main)
    assert isinstance(first, RateLimited) and first.retry_after == 21600
    assert isinstance(second, RateLimited)
    assert len(proxy.seen) == 1 and clock.sleeps == []


def test_429_without_hints_backs_off_then_gives_up(registry: Registry) -> None:
    """A 429 with no Retry-After is retried with backoff and ends as RateLimited."""
    push_image(registry, "acme/app", "1")
    clock = FakeClock(NOW)
    with run_fault_proxy(registry.url, lambda seen: Respond(429)) as proxy:

        async def main() -> None:
            async with RegistryClient(
                clock=clock.now, sleep=clock.sleep, retry=RetryPolicy(attempts=3, base=1.0)
            ) as client:
                await client.list_tags(f"{proxy.host}/acme/app")

        with pytest.raises(RateLimited, match="after 3 tries"):
            anyio.run(main)
    assert len(proxy.seen) == 3
    assert len(clock.sleeps) == 2
    assert 0.5 <= clock.sleeps[0] <= 1.0 and 1.0 <= clock.sleeps[1] <= 2.0


def test_rate_setting_paces_requests(registry: Registry) -> None:
    """A registry with rate 5/s and burst 2 has its 6 requests spaced by recorded waits."""
    for i in range(6):
        push_image(registry, f"acme/r{i}", "1")
    clock = FakeClock(NOW)
    settings = RegistriesSettings(
        registries={registry.host: RegistrySettings(rate=5, burst=2, concurrency=1)}
    )

    async def main() -> None:
        async with RegistryClient(settings=settings, clock=clock.now, sleep=clock.sleep) as c:
            await list_each(c, [f"{registry.host}/acme/r{i}" for i in range(6)])

    anyio.run(main)
    assert clock.sleeps == pytest.approx([0.2] * 4)


def test_5xx_is_retried_with_backoff(registry: Registry) -> None:
    """Two 503 answers are retried after jittered backoff and the listing succeeds."""
    push_image(registry, "acme/app", "1")
    clock = FakeClock(NOW)

    def rule(seen: Seen) -> Respond | None:
        return Respond(503, {"Content-Type": "text/plain"}, b"busy") if seen.number <= 2 else None

    with run_fault_proxy(registry.url, rule) as proxy:

        async def main() -> list[str]:
            async with RegistryClient(clock=clock.now, sleep=clock.sleep) as client:
                return await client.list_tags(f"{proxy.host}/acme/app")

        assert anyio.run(main) == ["1"]
    assert len(clock.sleeps) == 2
    assert 0.25 <= clock.sleeps[0] <= 0.5 and 0.5 <= clock.sleeps[1] <= 1.0


def test_the_polite_transport_alone_retries_and_waits_as_asked() -> None:
    """PoliteTransport around httpx.MockTransport: a 503 is retried after a backoff, a 429
    after exactly its Retry-After, every try is counted and shown to the response hooks."""
    answers = [
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json={"tags": []}),
    ]
    statuses: list[int] = []

    async def hook(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    clock = FakeClock(NOW)
    transport = PoliteTransport(
        httpx.MockTransport(lambda request: answers.pop(0)),
        registry="reg.example",
        concurrency=1,
        rate=None,
        burst=1,
        max_bytes=1024,
        deadline=10,
        retry=RetryPolicy(base=1.0),
        clock=clock.now,
        sleep=clock.sleep,
        rng=random.Random(1),
        on_response=[hook],
    )

    async def main() -> int:
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get("https://reg.example/v2/acme/app/tags/list")).status_code

    assert anyio.run(main) == 200
    assert statuses == [503, 429, 200] and transport.requests == 3
    assert len(clock.sleeps) == 2
    assert 0.5 <= clock.sleeps[0] <= 1.0 and clock.sleeps[1] == 3.0


def test_the_polite_transport_refuses_a_redirected_token_request() -> None:
    """A token request (marked by the auth flow) answered with a redirect is an AuthError;
    the place it points to is never asked."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        return httpx.Response(307, headers={"Location": "https://evil.example/token"})

    clock = FakeClock(NOW)
    transport = PoliteTransport(
        httpx.MockTransport(handler),
        registry="reg.example",
        concurrency=1,
        rate=None,
        burst=1,
        max_bytes=1024,
        deadline=10,
        retry=RetryPolicy(),
        clock=clock.now,
        sleep=clock.sleep,
        rng=random.Random(1),
    )
    request = httpx.Request("POST", "https://auth.example/token", extensions={TOKEN_REQUEST: True})

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            await client.send(request)

    with pytest.raises(AuthError, match="token requests are not redirected"):
        anyio.run(main)
    assert asked == ["auth.example"]
