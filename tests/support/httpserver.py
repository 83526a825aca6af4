"""The one way the fake servers in tests/support serve HTTP: a ``ThreadingHTTPServer`` on a
free loopback port, in a background thread, for the length of a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def nonblocking_accept(httpd: ThreadingHTTPServer) -> None:
    """``serve_forever`` accepts once a poll says a connection waits. A client that resets
    its connection in between takes it out of the queue, and a blocking ``accept`` would
    then wait for good, and ``shutdown`` with it (a test hung so, once). Non-blocking, that
    ``accept`` fails at once and the loop polls again; accepted sockets still block."""
    httpd.socket.setblocking(False)


@contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler], *, address: str = "127.0.0.1"
) -> Iterator[ThreadingHTTPServer]:
    """Serve ``handler`` on a free port of ``address`` until the block ends.

    Request threads are daemons: a handler a test left hanging (a keep-alive connection, a
    drip-fed answer) never holds up the end of the block."""
    httpd = ThreadingHTTPServer((address, 0), handler)
    httpd.daemon_threads = True
    nonblocking_accept(httpd)
    # ``shutdown`` waits for the serving loop's next poll: at the default half second, the
    # end of every block waited a quarter of a second on average.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
