"""Every wait on a registry is bounded: pages, body size, time per request and per repository."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from imagebot.registry.settings import RegistriesSettings, default_max_pages
from tests.support.adversary import Adversary, Answer, Request, run_adversary, run_raw
from tests.support.cli import run_cli


def tags(host: str, tmp_path: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    registries = tmp_path / "registries.yaml"
    registries.write_text(json.dumps({"registries": {host: settings}}))
    return run_cli(
        "tags",
        f"{host}/acme/app",
        "--registries",
        str(registries),
        "--cache",
        str(tmp_path / "cache.sqlite"),
        timeout=60,
    )


def endless_pages(r: Request, s: Adversary) -> Answer:
    """Every page links to a next page with a new URL, for ever."""
    n = int(parse_qs(urlsplit(r.path).query).get("last", ["0"])[0])
    body = json.dumps({"name": "acme/app", "tags": [f"1.0.{n}"]}).encode()
    link = f'</v2/acme/app/tags/list?n=5&last={n + 1}>; rel="next"'
    return Answer(200, {"Content-Type": "application/json", "Link": link}, body)


def test_endless_pagination_stops_at_the_page_cap(tmp_path: Path) -> None:
    """A Link header with a new URL on every page is followed max_pages times, then a clear
    error; the default cap follows from tag_cap and page_size."""
    with run_adversary(endless_pages) as registry:
        result = tags(registry.host, tmp_path, tag_cap=10, page_size=5)
        assert len(registry.requests) == 100
    assert result.returncode == 1
    assert "more than 100 pages (max_pages; the default follows tag_cap 10" in result.stderr


def test_page_cap_is_configurable(tmp_path: Path) -> None:
    """max_pages in registries.yaml sets the cap."""
    with run_adversary(endless_pages) as registry:
        result = tags(registry.host, tmp_path, max_pages=7)
        assert len(registry.requests) == 7
    assert result.returncode == 1
    assert "more than 7 pages (max_pages" in result.stderr


def test_default_page_cap_follows_tag_cap_and_page_size() -> None:
    """Ten times the pages the tag cap needs, at least 100; 100 for the defaults."""
    assert default_max_pages(10_000, 1000) == 100
    assert default_max_pages(10_000, 10) == 10_000
    assert default_max_pages(10, 5) == 100
    config = RegistriesSettings.model_validate({"defaults": {"page_size": 50}}).for_host("x.io")
    assert config.max_pages == 2000
    assert config.max_response_bytes == 64 * 1024 * 1024


def test_a_huge_tag_list_is_cut_off_at_the_size_cap(tmp_path: Path) -> None:
    """A tags/list body over max_response_bytes is not read whole: a clear error instead."""
    body = json.dumps({"name": "acme/app", "tags": [f"1.0.{i}" for i in range(400_000)]})
    assert len(body) > 3 * 1024 * 1024

    def huge(r: Request, s: Adversary) -> Answer:
        return Answer(200, {"Content-Type": "application/json"}, body.encode())

    with run_adversary(huge) as registry:
        result = tags(registry.host, tmp_path, max_response_bytes=1024 * 1024)
    assert result.returncode == 1
    assert "answer too large (answer larger than 1 MiB (max_response_bytes))" in result.stderr
    assert "Traceback" not in result.stderr


def drip(conn: socket.socket) -> None:
    """Read the request, then send a valid answer one byte every 50 ms, for ever if need be:
    every single read arrives long before any per-read timeout."""
    conn.recv(65536)
    body = b'{"name": "acme/app", "tags": ["1.0.0"]}' * 1000
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    for i in range(len(answer)):
        conn.sendall(answer[i : i + 1])
        time.sleep(0.05)


def test_a_registry_that_drips_bytes_is_cut_off_by_the_deadlines(tmp_path: Path) -> None:
    """One byte at a time never trips a per-read timeout; the per-request deadline and the
    per-repository deadline end it with a clear error naming the setting."""
    with run_raw(drip) as host:
        result = tags(host, tmp_path, timeout=5, deadline=0.5, repository_deadline=2)
    assert result.returncode == 1
    assert "not finished within 2s (repository_deadline)" in result.stderr
    retries = [json.loads(line) for line in result.stderr.splitlines() if "registry_retry" in line]
    assert retries
    assert "too slow (no complete answer within 0.5s (deadline))" in retries[0]["reason"]


def endless_redirect(conn: socket.socket) -> None:
    """A 307 whose body never ends, pointing at a page that answers normally."""
    request = conn.recv(65536).decode("latin-1")
    if "final=1" in request.split("\r\n", 1)[0]:
        body = json.dumps({"name": "acme/app", "tags": ["1.0.0", "1.1.0"]}).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return
    conn.sendall(
        b"HTTP/1.1 307 Temporary Redirect\r\n"
        b"Location: /v2/acme/app/tags/list?n=1000&final=1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 1024
    while True:  # until the client hangs up (sendall then raises, ending the thread)
        conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        time.sleep(0.01)


def test_a_redirect_with_an_endless_body_is_followed_without_reading_it(tmp_path: Path) -> None:
    """A redirect's body is never read, so an endless one neither hangs the listing nor
    trips its deadline."""
    with run_raw(endless_redirect) as host:
        result = tags(host, tmp_path, deadline=5, repository_deadline=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1.0.0", "1.1.0"]
