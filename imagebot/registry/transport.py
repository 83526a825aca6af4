"""httpx's connection pool, with a network backend that looks a connection's socket up once.

Before every request and after every response, httpcore's pool asks each idle keep-alive
connection whether the server has closed it (``get_extra_info("is_readable")``). The anyio
stream answers by rebuilding its whole table of socket attributes — ``getpeername`` and
``getsockname`` included — to find the socket, then polls it. At 16 connections that is
32 lookups per request, about a quarter of the CPU of listing 1,000 repositories; a cold
``imagebot plan`` of 1,000 images spends a tenth more CPU without it (bench/cycle.py, the
one speed trick that measurably serves its budget). The socket of a connection never
changes, so :class:`SocketOnce` looks it up when the connection opens and polls it directly
afterwards.
"""

# ruff: noqa: ASYNC109  (the ``timeout`` parameters are httpcore's backend interface)
from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from imagebot.errors import RegistryError
from imagebot.registry.settings import RegistryConfig

# httpcore's own spelling of a socket option.
_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def network_transport(cfg: RegistryConfig) -> httpx.AsyncHTTPTransport:
    """The connection pool of one registry: its TLS settings, room for its concurrency, and
    connections through :class:`SocketOnce`."""
    limits = httpx.Limits(
        max_connections=cfg.concurrency + 4, max_keepalive_connections=cfg.concurrency
    )
    out = httpx.AsyncHTTPTransport(verify=_tls(cfg), limits=limits)
    pool = getattr(out, "_pool", None)
    # httpx builds its pool without a way to pass a backend; it keeps the backend in this
    # attribute (httpcore 1.x). Should a later release move it, the pool keeps its own.
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = SocketOnce(pool._network_backend)
    return out


def _tls(cfg: RegistryConfig) -> ssl.SSLContext | bool:
    if cfg.insecure or not (cfg.ca_file or cfg.client_cert):
        return True
    try:
        context = ssl.create_default_context(cafile=cfg.ca_file)
        if cfg.client_cert:
            context.load_cert_chain(cfg.client_cert, cfg.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(f"TLS settings: {exc}", registry=cfg.host) from None
    return context


class SocketOnce(httpcore.AsyncNetworkBackend):
    """Wraps a backend so that each stream it opens finds its socket once."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "socket" and self._socket is not None:
            return self._socket
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would return at once: data, or the b"" of a connection the server
    closed. A socket already closed here counts as readable, as httpcore counts it."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
