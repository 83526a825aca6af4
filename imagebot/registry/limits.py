"""Bounds on what one registry can cost us: body size, time per request, where credentials go.

httpx's timeouts apply per network read, so a registry that sends one byte a second is
never cut off, and ``response.content`` holds a body of any size in memory. Every registry
and token request goes through :func:`read_bounded` (in the registry's transport), which
streams the body up to a size cap and gives each request (connect, headers, body) one
deadline. A redirect's body is never read: a hostile registry could make it endless.

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

log = logs.get_logger("imagebot.registry")

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Redirects followed per request (httpx's own default is 20).
MAX_REDIRECTS = 10

#: Marks a token request (an extension of the request): the registry's transport refuses
#: to see its answer redirected, for it carries credentials meant for the realm alone.
TOKEN_REQUEST = "imagebot.token_request"


class DeadlineExceeded(httpx.TimeoutException):
    """The whole request (headers and body) took longer than the registry's ``deadline``."""


class ResponseTooLarge(httpx.DecodingError):
    """The body is larger than the registry's ``max_response_bytes``; reading stopped there."""


class TlsFailure(httpx.TransportError):
    """The TLS peer refused us (bad client certificate, alert after the handshake).

    httpcore maps handshake errors to ConnectError, but a TLS 1.3 server's alert about our
    client certificate arrives on the first read as a bare ``ssl.SSLError``.
    """


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


async def read_bounded(
    transport: httpx.AsyncBaseTransport, request: httpx.Request, *, max_bytes: int, deadline: float
) -> httpx.Response:
    """Send ``request`` on ``transport`` and read its body, at most ``max_bytes`` of it, within
    ``deadline`` seconds; raise :class:`ResponseTooLarge` or :class:`DeadlineExceeded`. The
    OS-level errors httpcore lets through become httpx ones."""
    chunks: list[bytes] = []
    response: httpx.Response | None = None
    with anyio.move_on_after(deadline) as scope:
        try:
            response = await transport.handle_async_request(request)
            try:
                size = 0
                if not response.has_redirect_location:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise ResponseTooLarge(
                                f"answer larger than {_size(max_bytes)} (max_response_bytes)",
                                request=request,
                            )
                        chunks.append(chunk)
            finally:
                with anyio.CancelScope(shield=True):  # close even when the deadline cancels us
                    await response.aclose()
        except ssl.SSLError as exc:
            raise TlsFailure(f"TLS: {exc}", request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
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
        request=request,
        extensions=response.extensions,
    )


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"
