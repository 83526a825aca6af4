"""The registry client's connection pool: a keep-alive connection the server closed is
noticed before it is reused, through the socket the backend looked up once."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler

import anyio
import httpcore
import httpx

from imagebot.registry.settings import RegistriesSettings
from imagebot.registry.transport import SocketOnce, network_transport
from tests.support.httpserver import serving

closed = threading.Event()
peers: list[tuple[str, int]] = []


class ClosesAfterEachAnswer(BaseHTTPRequestHandler):
    """Answers with keep-alive framing (no ``Connection: close``), then hangs up: what a
    registry behind a proxy with a short idle timeout does between two requests."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        peers.append(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True
        closed.set()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_connection_the_server_closed_is_not_reused() -> None:
    peers.clear()

    async def main() -> list[str]:
        transport = network_transport(RegistriesSettings().for_host(f"127.0.0.1:{port}"))
        async with httpx.AsyncClient(transport=transport) as client:
            bodies = []
            for _ in range(3):
                closed.clear()
                response = await client.get(f"http://127.0.0.1:{port}/v2/")
                bodies.append(response.text)
                # The hang-up has happened before the next request is sent.
                assert closed.wait(10)
            return bodies

    with serving(ClosesAfterEachAnswer) as httpd:
        port = httpd.server_address[1]
        assert anyio.run(main) == ["ok", "ok", "ok"]
    # Three requests, three connections: each closed one was dropped, none reused.
    assert len({port for _, port in peers}) == 3


def test_the_pool_connects_through_the_socket_once_backend() -> None:
    transport = network_transport(RegistriesSettings().for_host("registry.example"))
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert isinstance(pool._network_backend, SocketOnce)
