"""Bounds on what one registry can cost us: body size, time per request, where credentials go.

httpx's timeouts apply per network read, so a registry that sends one byte a second is
never cut off, and ``response.content`` holds a body of any size in memory. Every registry
and token request goes through :func:`bounded_send`, which streams the body up to a size
cap and gives the whole exchange (connect, redirects, headers, body) one deadline.

:class:`CredentialScope` is an httpx request hook: it sees every request the client sends,
redirect hops included, and strips ``Authorization`` from any request that is not for the
configured registry or the token realm named by that registry's own challenge. The
client never adds credentials elsewhere; the hook makes sure no future code path does.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import anyio
import httpx

from imagebot import logs
from imagebot.registry.politeness import TlsFailure
from imagebot.registry.politeness import send as http_send

log = logs.get_logger("imagebot.registry")

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Redirects followed per request (httpx's own default is 20).
MAX_REDIRECTS = 10


class DeadlineExceeded(httpx.TimeoutException):
    """The whole request (headers and body) took longer than the registry's ``deadline``."""


class ResponseTooLarge(httpx.DecodingError):
    """The body is larger than the registry's ``max_response_bytes``; reading stopped there."""


Origin = tuple[str, str, int]


def origin(url: httpx.URL | str) -> Origin:
    """(scheme, host, port) with the scheme's default port filled in."""
    u = httpx.URL(url)
    return (u.scheme, u.host, u.port or _DEFAULT_PORTS.get(u.scheme, 0))


def same_origin(a: httpx.URL | str, b: httpx.URL | str) -> bool:
    """Same host and port, and same scheme or an upgrade from http to https."""
    (sa, ha, pa), (sb, hb, pb) = origin(a), origin(b)
    if (ha, sa) == (hb, sb):
        return pa == pb
    # http://host -> https://host is the upgrade a registry's own redirect makes.
    return ha == hb and sa == "http" and sb == "https" and pb == 443 and pa in (80, 443)


class CredentialScope:
    """Where one registry's credentials may be sent: its own origin and its token realm."""

    def __init__(self, registry_url: str, *, realm: Callable[[], str | None]) -> None:
        self.registry_url = registry_url
        self._realm = realm
        self.withheld = 0
        """Requests whose Authorization header this hook removed."""

    def allows(self, url: httpx.URL | str) -> bool:
        if same_origin(self.registry_url, url):
            return True
        realm = self._realm()
        try:
            return realm is not None and same_origin(realm, url)
        except httpx.InvalidURL:  # a realm that is no URL matches nothing
            return False

    async def __call__(self, request: httpx.Request) -> None:
        if "authorization" in request.headers and not self.allows(request.url):
            del request.headers["authorization"]
            self.withheld += 1
            log.warning(
                "credentials_withheld",
                registry=httpx.URL(self.registry_url).netloc.decode("ascii"),
                host=request.url.netloc.decode("ascii"),
            )


async def bounded_send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    max_bytes: int,
    deadline: float,
    follow_redirects: bool = True,
) -> httpx.Response:
    """Send ``request`` and read its body, at most ``max_bytes`` of it, within ``deadline``
    seconds in all; raise :class:`ResponseTooLarge` or :class:`DeadlineExceeded`."""
    response: httpx.Response | None = None
    with anyio.move_on_after(deadline) as scope:
        response = await _send_following(client, request, follow_redirects=follow_redirects)
        try:
            chunks: list[bytes] = []
            size = 0
            try:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ResponseTooLarge(
                            f"answer larger than {_size(max_bytes)} (max_response_bytes)",
                            request=request,
                        )
                    chunks.append(chunk)
            except ssl.SSLError as exc:
                raise TlsFailure(f"TLS: {exc}", request=request) from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        finally:
            with anyio.CancelScope(shield=True):  # close even when the deadline cancels us
                await response.aclose()
    if scope.cancelled_caught or response is None:
        raise DeadlineExceeded(
            f"no complete answer within {deadline:g}s (deadline)", request=request
        )
    # The body is decoded already: drop Content-Encoding so it is not decoded twice.
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-encoding"]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions=response.extensions,
    )


async def _send_following(
    client: httpx.AsyncClient, request: httpx.Request, *, follow_redirects: bool
) -> httpx.Response:
    """The streamed response at the end of the redirects. httpx would read each redirect's
    body whole before following it; a hostile registry could make that body endless, so
    redirects are followed here, their bodies left unread. ``next_request`` is httpx's own
    (it drops ``Authorization`` across origins), and the request hook sees every hop."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await http_send(client, request, stream=True, follow_redirects=False)
        if not follow_redirects or response.next_request is None:
            return response
        await response.aclose()
        request = response.next_request
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"
