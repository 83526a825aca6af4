"""Small hostile HTTP servers on loopback: fake registries, token realms and slow talkers.

Each :class:`Adversary` listens on its own loopback address and port (``127.0.0.2`` is a
different *host* from ``127.0.0.1`` on Linux), answers every request with a function of
the request, and records every request it received, headers and body included, so a test
can assert exactly which requests carried credentials.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.httpserver import serving


@dataclass(frozen=True)
class Request:
    """One request an adversary received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[Request, "Adversary"], Answer]


class Adversary:
    """A running server: ``url`` to point clients at, ``requests`` what it received."""

    def __init__(self, handler: Handler, address: str) -> None:
        self.handler = handler
        self.address = address
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.host = ""
        self.url = ""

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)


def _http_handler(server: Adversary) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, dict(self.headers.items()), body)
            server.record(request)
            answer = server.handler(request, server)
            self.send_response(answer.status)
            for k, v in answer.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_HEAD = do_POST = _handle

    return H


@contextmanager
def run_adversary(handler: Handler, *, address: str = "127.0.0.1") -> Iterator[Adversary]:
    """Serve ``handler`` on a free port of ``address`` until the block ends."""
    server = Adversary(handler, address)
    with serving(_http_handler(server), address=address) as httpd:
        server.host = f"{address}:{httpd.server_address[1]}"
        server.url = f"http://{server.host}"
        yield server


@contextmanager
def run_raw(serve: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback TCP server handing each accepted connection to ``serve`` in a thread;
    yields ``host:port``. For servers that misbehave below HTTP (drip-feeding bytes)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_and_close, args=(serve, conn), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def _serve_and_close(serve: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        serve(conn)
    except OSError:
        pass
    finally:
        conn.close()
