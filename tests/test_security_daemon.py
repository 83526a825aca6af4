"""``imagebot serve`` under hostile clients, as a real subprocess on loopback: stalled and
trickling connections are cut at the HTTP deadline, bodies in flight are capped, header
senders are refused before their body is read, signed webhooks cannot be replayed, floods
of unwatched repositories leave one log line, deep JSON is a 400, and URL tokens are off
unless configured."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from imagebot.daemon.app import MAX_BODIES_IN_FLIGHT, MAX_CONNECTIONS
from tests.support.daemon import Daemon, run_daemon, wait_for

SECRET = "webhook-shared-s3cret"
URL_TOKEN = "url-only-t0ken-value"
WATCHED = "127.0.0.1:9/acme/app"  # nothing listens on port 9: cycles fail fast, serving goes on
POLICY = f"""\
environment: dev
repo: {{url: /nowhere.git, branch: main, path: envs/dev}}
schedule: {{every: 24h}}
images:
  - name: app
    repository: {WATCHED}
"""


@contextmanager
def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Daemon]:
    policies = tmp_path / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "dev.yaml").write_text(POLICY)
    with run_daemon(
        tmp_path, "--policies", str(policies), "--cache-dir", str(tmp_path / "cache"),
        "--http-deadline", "1", *args, env={"IMAGEBOT_WEBHOOK_SECRET": SECRET, **(env or {})},
    ) as daemon:  # fmt: skip
        yield daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with serve(tmp_path) as d:
        yield d


def connect(d: Daemon) -> socket.socket:
    host, port = d.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def head(path: str, length: int, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: imagebot", f"Content-Length: {length}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(sock: socket.socket) -> tuple[int, float]:
    """The status the server answers on ``sock``, and the seconds until it closed it."""
    start, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return int(data.split(b" ", 2)[1]), time.monotonic() - start


def signed(body: bytes, stamp: str | None = None) -> dict[str, str]:
    material = f"{stamp}.".encode() + body if stamp else body
    digest = hmac.new(SECRET.encode(), material, hashlib.sha256).hexdigest()
    headers = {"X-Imagebot-Signature": f"sha256={digest}"}
    return headers | ({"X-Imagebot-Timestamp": stamp} if stamp else {})


def test_header_sender_is_refused_before_its_body_is_read(daemon: Daemon) -> None:
    """A Distribution webhook with a wrong bearer token and a 1 MiB body it never sends is
    answered 401 at once, and the connection closed, without waiting for the body."""
    with connect(daemon) as sock:
        sock.sendall(head("/webhooks/distribution", 1024 * 1024 - 1, Authorization="Bearer x"))
        status, seconds = answer(sock)
    assert status == 401 and seconds < 0.9


def test_stalled_body_and_trickled_headers_are_cut_at_the_deadline(daemon: Daemon) -> None:
    """A signed-sender body that stalls gets 408 and a closed connection at the HTTP deadline
    (1 s here); a client that never finishes its request head is disconnected as well."""
    with connect(daemon) as body, connect(daemon) as trickle:
        body.sendall(head("/webhooks/generic", 1000) + b'{"repo')
        trickle.sendall(b"POST /webhooks/generic HTTP/1.1\r\nHost: imag")
        status, seconds = answer(body)
        assert status == 408 and 0.9 < seconds < 5
        start = time.monotonic()
        assert trickle.recv(100) == b"", "closed without an answer"
        assert time.monotonic() - start < 5
    assert daemon.get("/healthz").status_code == 200


def test_bodies_in_flight_are_capped_and_health_still_answers(daemon: Daemon) -> None:
    """With MAX_BODIES_IN_FLIGHT (8) webhook bodies being received, one more is answered 503
    at once while /healthz keeps answering; once the deadline has cut the stalled ones,
    webhooks are accepted again."""
    with ExitStack() as stack:
        stalled = [stack.enter_context(connect(daemon)) for _ in range(MAX_BODIES_IN_FLIGHT)]
        for sock in stalled:
            sock.sendall(head("/webhooks/generic", 1000) + b"{")
        busy = lambda: daemon.post("/webhooks/generic", b"{}").status_code == 503  # noqa: E731
        wait_for(busy, timeout=0.8, what="one body more to be refused")
        assert daemon.get("/healthz").status_code == 200
        assert [answer(sock)[0] for sock in stalled] == [408] * MAX_BODIES_IN_FLIGHT
    body = json.dumps({"repository": WATCHED, "tag": "1.0.1"}).encode()
    assert daemon.post("/webhooks/generic", body, signed(body)).status_code == 202


def test_connections_are_capped(daemon: Daemon) -> None:
    """With MAX_CONNECTIONS connections open and idle, a request on one more is answered 503
    at once instead of waiting; the server closes the idle ones at the HTTP deadline, and
    requests are served again while their clients still hold them open."""
    with ExitStack() as stack:
        for _ in range(MAX_CONNECTIONS):
            stack.enter_context(connect(daemon))
        wait_for(
            lambda: daemon.get("/healthz").status_code == 503,
            timeout=0.8,
            what="a request past the connection cap to be refused",
        )
        wait_for(
            lambda: daemon.get("/healthz").status_code == 200,
            timeout=5,
            what="the server to close the idle connections",
        )


def test_signed_webhook_cannot_be_replayed(daemon: Daemon) -> None:
    """A signed generic webhook is accepted once: the same signature again is 409, with or
    without a timestamp; a timestamp outside 5 minutes is 401; a Distribution event id seen
    before counts no push."""
    body = json.dumps({"repository": WATCHED, "tag": "1.0.1"}).encode()
    now = str(int(time.time()))
    assert daemon.post("/webhooks/generic", body, signed(body, now)).status_code == 202
    assert daemon.post("/webhooks/generic", body, signed(body, now)).status_code == 409
    assert daemon.post("/webhooks/generic", body, signed(body)).status_code == 202
    assert daemon.post("/webhooks/generic", body, signed(body)).status_code == 409
    old = str(int(time.time()) - 600)
    stale = daemon.post("/webhooks/generic", body, signed(body, old))
    assert stale.status_code == 401 and "5-minute window" in stale.json()["error"]
    event = {"id": "ev-1", "action": "push", "target": {"repository": "acme/app", "tag": "2"}}
    envelope = json.dumps({"events": [event]}).encode()
    bearer = {"Authorization": f"Bearer {SECRET}"}
    path = "/webhooks/distribution?registry=127.0.0.1:9"
    assert daemon.post(path, envelope, bearer).json() == {"pushes": 1, "environments": ["dev"]}
    assert daemon.post(path, envelope, bearer).json() == {"pushes": 0, "environments": []}


def test_flood_of_unwatched_repositories_logs_one_line(daemon: Daemon) -> None:
    """A payload of 5,000 pushes to repositories no policy watches triggers nothing and
    leaves one log line, naming no repository."""
    events = [
        {"id": f"e{i}", "action": "push", "target": {"repository": f"x/r{i}", "tag": "1"}}
        for i in range(5000)
    ]
    envelope = json.dumps({"events": events}).encode()
    wait_for(lambda: bool(daemon.named("cycle_finished")), timeout=30, what="the startup cycle")
    before = len(daemon.log_text().splitlines())
    reply = daemon.post("/webhooks/distribution", envelope, {"Authorization": f"Bearer {SECRET}"})
    assert reply.json() == {"pushes": 5000, "environments": []}
    daemon.get("/healthz")
    lines = daemon.log_text().splitlines()[before:]
    assert len(lines) == 1 and '"event": "webhook_received"' in lines[0], lines
    assert json.loads(lines[0])["watched"] == []


def test_deeply_nested_json_is_a_bad_request(daemon: Daemon) -> None:
    """A signed body nested 100,000 levels deep is answered 400, with no traceback logged."""
    body = b"[" * 100_000 + b"]" * 100_000
    reply = daemon.post("/webhooks/generic", body, signed(body))
    assert reply.status_code == 400 and "nested too deeply" in reply.json()["error"]
    assert "Traceback" not in daemon.log_text()


def test_url_tokens_only_when_configured_and_never_the_secret(tmp_path: Path) -> None:
    """Docker Hub and Quay webhooks are off until a URL token of their own is configured;
    then that token is accepted in the URL, the webhook secret is not, and senders that send
    headers never accept a URL token."""
    hub = json.dumps({"repository": {"repo_name": "acme/web"}, "push_data": {"tag": "1"}})
    with serve(tmp_path / "off") as d:
        off = d.post(f"/webhooks/dockerhub?token={SECRET}", hub.encode())
        assert off.status_code == 404 and "--webhook-url-token-file" in off.json()["error"]
        assert d.post(f"/webhooks/quay?token={SECRET}", b"{}").status_code == 404
    token_file = tmp_path / "url-token"
    token_file.write_text(URL_TOKEN + "\n")
    with serve(tmp_path / "on", "--webhook-url-token-file", str(token_file)) as d:
        assert d.post(f"/webhooks/dockerhub?token={URL_TOKEN}", hub.encode()).status_code == 202
        assert d.post(f"/webhooks/dockerhub?token={SECRET}", hub.encode()).status_code == 401
        body = json.dumps({"repository": WATCHED, "tag": "1"}).encode()
        assert d.post(f"/webhooks/generic?token={URL_TOKEN}", body).status_code == 401
        assert URL_TOKEN not in d.log_text() and SECRET not in d.log_text()
