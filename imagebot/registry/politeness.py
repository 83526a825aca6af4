"""Being a good registry citizen: concurrency limit, token bucket, retries and backoff.

Every wait goes through an injected ``sleep`` and every reading of time through an injected
``clock``, so tests record the waits instead of spending them.
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

import anyio
import httpx

from imagebot.clock import Clock, Sleep

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


@dataclass
class Politeness:
    """The shared manners of one registry host: at most ``concurrency`` requests in flight,
    a token bucket if ``rate`` is set, and a time before which nothing is sent."""

    concurrency: int
    bucket: TokenBucket | None
    limiter: anyio.CapacityLimiter = field(init=False)
    blocked_until: datetime | None = None
    blocked_reason: str = ""

    def __post_init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(self.concurrency)


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


class TlsFailure(httpx.TransportError):
    """The TLS peer refused us (bad client certificate, alert after the handshake).

    httpcore maps handshake errors to ConnectError, but a TLS 1.3 server's alert about our
    client certificate arrives on the first read as a bare ``ssl.SSLError``.
    """


def transport_retryable(exc: httpx.HTTPError) -> bool:
    """Network trouble worth another try: refused/reset connections, timeouts, a body cut off."""
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.ProxyError | TlsFailure
    )


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    stream: bool = False,
    follow_redirects: bool = True,
) -> httpx.Response:
    """``client.send`` with the OS-level errors httpcore lets through turned into httpx ones."""
    try:
        return await client.send(request, stream=stream, follow_redirects=follow_redirects)
    except ssl.SSLError as exc:
        raise TlsFailure(f"TLS: {exc}", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
