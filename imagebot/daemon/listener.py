"""The daemon's listening socket and uvicorn server, run on the service's own loop."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import anyio
import uvicorn

from imagebot.errors import ImagebotError


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


class Server(uvicorn.Server):
    """uvicorn on our loop: the service handles signals, and there is no 0.1 s tick."""

    def __init__(self, config: uvicorn.Config, stop: anyio.Event) -> None:
        super().__init__(config)
        self._stop = stop

    def capture_signals(self) -> Any:
        return contextlib.nullcontext()

    async def main_loop(self) -> None:
        await self._stop.wait()


def bind(listen: str) -> socket.socket:
    """A non-blocking socket listening on ``HOST:PORT``, bound before anything else starts."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ImagebotError(f"--listen {listen}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock
