"""A loopback HTTP proxy in front of a real registry that injects faults on chosen requests.

A *rule* sees every request (its 1-based number, method, path, headers) and returns what to
do: forward it untouched (``None``), answer instead (:class:`Respond` — 429 with
``Retry-After``, 503, an HTML error page…), forward after a delay (:class:`Delay`), drop the
connection without answering (:class:`Drop`), send a truncated body (:class:`Truncate`) or
forward and alter the answer (:class:`Rewrite` — a bad ``Link`` header, a wrong content
type). Every request is recorded so tests can count calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.support.httpserver import serving

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Seen:
    """A request the proxy received."""

    number: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Respond:
    """Answer with this instead of forwarding."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Delay:
    """Forward after ``seconds`` of real time (a slow registry)."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class Truncate:
    """Forward, but send only the first ``keep`` bytes of the body and close."""

    keep: int = 10


@dataclass(frozen=True)
class Rewrite:
    """Forward, then pass (status, headers, body) through ``change`` before answering."""

    change: Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


Action = Respond | Delay | Drop | Truncate | Rewrite | None
Rule = Callable[[Seen], Action]


def paginate(seen: Seen, *, order: Callable[[list[str]], list[str]] = sorted) -> Action:
    """For a tags/list request, page the registry's answer as the distribution spec says.

    Distribution 2.8 ignores ``n``/``last`` on tags/list (paging arrived in 3.0), so this
    applies them on top of the real answer: tags in ``order`` (lexical by default), those
    after ``last``, at most ``n``, and ``Link: <…?n=N&last=T>; rel="next"`` while more remain.
    """
    url = urlsplit(seen.path)
    if not url.path.endswith("/tags/list"):
        return None
    query = parse_qs(url.query)

    def change(
        status: int, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if status != 200:
            return status, headers, body
        doc = json.loads(body)
        tags = order(list(doc.get("tags") or []))
        if "last" in query:
            last = query["last"][0]
            tags = tags[tags.index(last) + 1 :] if last in tags else []
        n = int(query["n"][0]) if "n" in query else len(tags)
        page, more = tags[:n], len(tags) > n
        headers = {k: v for k, v in headers.items() if k.lower() != "link"}
        if more:
            nxt = urlencode({"n": n, "last": page[-1]})
            headers["Link"] = f'<{url.path}?{nxt}>; rel="next"'
        return status, headers, json.dumps({"name": doc.get("name"), "tags": page}).encode()

    return Rewrite(change)


def every_nth(n: int, action: Action) -> Rule:
    """A rule applying ``action`` to requests number n, 2n, 3n…"""
    return lambda seen: action if seen.number % n == 0 else None


class FaultProxy:
    """The running proxy: ``url``/``host`` to point clients at, ``seen`` what it received."""

    def __init__(self, upstream: str, rule: Rule) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule = rule
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30)
        self.url = ""
        self.host = ""

    def record(self, method: str, path: str, headers: dict[str, str]) -> Seen:
        with self._lock:
            seen = Seen(len(self.seen) + 1, method, path, headers)
            self.seen.append(seen)
            return seen

    def forward(self, seen: Seen, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in seen.headers.items() if k.lower() not in HOP_BY_HOP}
        response = self._client.request(
            seen.method, self.upstream + seen.path, headers=headers, content=body or None
        )
        out = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        out.pop("content-encoding", None)
        return response.status_code, out, response.content

    def close(self) -> None:
        self._client.close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = proxy.record(self.command, self.path, dict(self.headers.items()))
            action = proxy.rule(seen)
            if isinstance(action, Drop):
                self.close_connection = True
                return
            if isinstance(action, Respond):
                self._send(action.status, action.headers, action.body)
                return
            if isinstance(action, Delay):
                time.sleep(action.seconds)
            try:
                status, headers, payload = proxy.forward(seen, body)
            except (httpx.HTTPError, RuntimeError):
                # The upstream is gone (the test already finished with a slow request).
                self.close_connection = True
                return
            if isinstance(action, Rewrite):
                status, headers, payload = action.change(status, headers, payload)
            if isinstance(action, Truncate):
                self._send(status, headers, payload, keep=action.keep)
                return
            self._send(status, headers, payload)

        def _send(
            self, status: int, headers: dict[str, str], body: bytes, keep: int | None = None
        ) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if keep is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body if keep is None else body[:keep])
            if keep is not None:
                self.wfile.flush()
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@contextmanager
def run_fault_proxy(upstream: str, rule: Rule = lambda seen: None) -> Iterator[FaultProxy]:
    """Start a proxy on a free loopback port in front of ``upstream``."""
    proxy = FaultProxy(upstream, rule)
    try:
        with serving(_handler(proxy)) as httpd:
            proxy.host = f"127.0.0.1:{httpd.server_address[1]}"
            proxy.url = f"http://{proxy.host}"
            yield proxy
    finally:
        proxy.close()
