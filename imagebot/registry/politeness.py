"""Being a good registry citizen, as an httpx transport wrapping the network one.

:class:`PoliteTransport` is one registry host's manners: at most ``concurrency`` requests in
flight, a token bucket if ``rate`` is set, retries with jittered backoff for network trouble
and 5xx answers, ``Retry-After`` honoured on 429, and a registry that asked for a long wait
failed fast until then. Every wait goes through an injected ``sleep`` and every reading of
time through an injected ``clock``, so tests record the waits instead of spending them.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import anyio
import httpx

from imagebot import logs
from imagebot.clock import Clock, Sleep
from imagebot.errors import AuthError, RateLimited
from imagebot.registry.limits import (
    TOKEN_REQUEST,
    DeadlineExceeded,
    ResponseTooLarge,
    TlsFailure,
    read_bounded,
)

log = logs.get_logger("imagebot.registry")

#: Status codes worth retrying: the registry or a proxy in front of it is overloaded or
#: restarting. 501/505 are permanent and are not here.
RETRY_STATUS = frozenset({500, 502, 503, 504, 520, 521, 522, 523, 524})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a failed request."""

    attempts: int = 5
    """Tries in all, the first included."""
    base: float = 0.5
    """Backoff before the first retry, doubled each time (full jitter halves it at random)."""
    cap: float = 30.0
    """Longest backoff between two tries."""
    max_wait: float = 120.0
    """Longest ``Retry-After`` honoured by waiting; a longer one fails fast as RateLimited,
    so one throttled registry (Docker Hub's 6-hour pull window) never stalls a cycle."""

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Jittered exponential backoff before retry number ``retry`` (0-based)."""
        ceiling: float = min(self.cap, self.base * (2.0**retry))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int, *, clock: Clock, sleep: Sleep) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated: float | None = None
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        # Waiters queue on the lock, so tokens are handed out first come, first served.
        async with self._lock:
            now = self._clock().timestamp()
            if self._updated is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = (1 - self._tokens) / self.rate
            self._tokens -= 1
            if wait > 0:
                # Take the token on credit and sleep until it is earned: re-checking after
                # the sleep could spin when a clock cannot represent a tiny remainder.
                await self._sleep(wait)


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Seconds the registry asked us to wait, from ``Retry-After`` (seconds or HTTP date)
    or, failing that, ``X-RateLimit-Reset`` (a Unix time, Docker Hub's API)."""
    value = response.headers.get("retry-after", "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, (when - now).total_seconds())
    reset = response.headers.get("x-ratelimit-reset", "").strip()
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            pass
    return None


def docker_hub_quota_window(response: httpx.Response) -> float | None:
    """Seconds until Docker Hub's pull quota refills when it is used up, else None.

    Docker Hub answers 429 without ``Retry-After`` once ``ratelimit-remaining`` is 0, and
    reports the window as ``;w=SECONDS`` (e.g. ``ratelimit-remaining: 0;w=21600``).
    """
    remaining = response.headers.get("ratelimit-remaining", "")
    count, _, rest = remaining.partition(";")
    if count.strip() != "0":
        return None
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "w":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def transport_retryable(exc: httpx.HTTPError) -> bool:
    """Network trouble worth another try: refused/reset connections, timeouts, a body cut off."""
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.ProxyError | TlsFailure
    )


ResponseHook = Callable[[httpx.Response], Awaitable[None]]


class PoliteTransport(httpx.AsyncBaseTransport):
    """One registry host's politeness around ``inner``: every request the registry client
    sends for that host (token requests included) goes through here, once per try."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        registry: str,
        concurrency: int,
        rate: float | None,
        burst: int,
        max_bytes: int,
        deadline: float,
        retry: RetryPolicy,
        clock: Clock,
        sleep: Sleep,
        rng: random.Random,
        on_response: Sequence[ResponseHook] = (),
    ) -> None:
        self._inner = inner
        self._registry = registry
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._bucket = TokenBucket(rate, burst, clock=clock, sleep=sleep) if rate else None
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._retry = retry
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._on_response = on_response
        self._blocked_until: datetime | None = None
        self._blocked_reason = ""
        self.requests = 0
        """Requests sent, retries included."""

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        tries = 0
        while True:
            self._check_blocked()
            try:
                async with self._limiter:
                    if self._bucket is not None:
                        await self._bucket.acquire()
                    self.requests += 1
                    response = await read_bounded(
                        self._inner, request, max_bytes=self._max_bytes, deadline=self._deadline
                    )
            except httpx.HTTPError as exc:
                tries += 1
                if not transport_retryable(exc) or tries >= self._retry.attempts:
                    raise
                await self._backoff(request, tries, reason=describe(exc))
                continue
            for hook in self._on_response:
                await hook(response)
            status = response.status_code
            if request.extensions.get(TOKEN_REQUEST) and response.has_redirect_location:
                raise AuthError(
                    f"token endpoint {request.url.netloc.decode('ascii')} redirects"
                    f" (HTTP {status}); token requests are not redirected",
                    registry=self._registry,
                )
            if status == 429:
                tries += 1
                await self._rate_limited(request, response, tries)
            elif status in RETRY_STATUS and tries + 1 < self._retry.attempts:
                tries += 1
                await self._backoff(request, tries, reason=f"HTTP {status}")
            else:
                return response

    def _check_blocked(self) -> None:
        if self._blocked_until is not None:
            left = (self._blocked_until - self._clock()).total_seconds()
            if left > 0:
                raise RateLimited(self._blocked_reason, retry_after=left)
            self._blocked_until = None

    async def _backoff(self, request: httpx.Request, tries: int, *, reason: str) -> None:
        wait = self._retry.backoff(tries - 1, self._rng)
        log.warning(
            "registry_retry",
            registry=self._registry,
            path=request.url.path,
            reason=reason,
            attempt=tries,
            wait=round(wait, 3),
        )
        await self._sleep(wait)

    async def _rate_limited(
        self, request: httpx.Request, response: httpx.Response, tries: int
    ) -> None:
        now = self._clock()
        wait = retry_after(response, now)
        if wait is None:
            wait = docker_hub_quota_window(response)
        if wait is not None and wait > self._retry.max_wait:
            # Waiting hours for a quota helps nobody: fail this registry fast for that long.
            reason = f"rate limited (HTTP 429), retry after {wait:.0f}s"
            self._blocked_until = now + timedelta(seconds=wait)
            self._blocked_reason = reason
            raise RateLimited(reason, retry_after=wait)
        if tries >= self._retry.attempts:
            raise RateLimited(
                f"still rate limited (HTTP 429) after {tries} tries", retry_after=wait
            )
        if wait is None:
            wait = self._retry.backoff(tries - 1, self._rng)
        log.warning(
            "registry_rate_limited", registry=self._registry, path=request.url.path, wait=wait
        )
        await self._sleep(wait)


def describe(exc: httpx.HTTPError) -> str:
    """Words for a network failure, with httpx's own detail."""
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no answer in time",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "connection dropped",
        DeadlineExceeded: "too slow",
        ResponseTooLarge: "answer too large",
    }
    kind = kinds.get(type(exc), type(exc).__name__)
    detail = str(exc)
    return f"{kind} ({detail})" if detail else kind
