"""Credentials go to the configured registry and its token realm, never to a host it redirects to.

Three loopback servers on three loopback *hosts*: the configured registry (127.0.0.1), the
token realm its own challenge names (127.0.0.3), and a hostile host the registry redirects
to (127.0.0.2). Every request each one received is recorded, and imagebot runs as a user
runs it: ``imagebot tags`` with credentials in registries.yaml.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from imagebot.registry.limits import CredentialScope
from tests.support.adversary import Adversary, Answer, Handler, Request, run_adversary
from tests.support.cli import run_cli

USER, PASSWORD = "robot", "s3cret-pass"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REFRESH_TOKEN = "refresh-7f3a9c"  # an identity token, exchanged by POST at the realm
TOKEN = "token-for-app"
TAGS_PATH = "/v2/acme/app/tags/list"


def page(tags: list[str], link: str | None = None) -> Answer:
    headers = {"Content-Type": "application/json"}
    if link:
        headers["Link"] = f'<{link}>; rel="next"'
    return Answer(200, headers, json.dumps({"name": "acme/app", "tags": tags}).encode())


def redirect(to: str) -> Answer:
    return Answer(307, {"Location": to})


def last(request: Request) -> str | None:
    return parse_qs(urlsplit(request.path).query).get("last", [None])[0]


def carries_secret(request: Request) -> bool:
    """Whether a request holds any configured secret: a header, or the body of a POST."""
    text = json.dumps(request.headers) + request.body.decode("latin-1")
    return (
        request.authorization is not None
        or PASSWORD in text
        or base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() in text
        or REFRESH_TOKEN in text
        or TOKEN in text
    )


class Hosts:
    """The three servers; handlers are set per test, each may read the others' URLs."""

    def __init__(self, stack: ExitStack) -> None:
        self.registry: Adversary = stack.enter_context(run_adversary(self._registry))
        self.evil: Adversary = stack.enter_context(run_adversary(self._evil, address="127.0.0.2"))
        self.realm: Adversary = stack.enter_context(run_adversary(self._realm, address="127.0.0.3"))
        self.on_registry: Handler = lambda r, s: Answer(404)
        self.on_evil: Handler = lambda r, s: Answer(404)
        self.on_realm: Handler = lambda r, s: Answer(404)

    def _registry(self, r: Request, s: Adversary) -> Answer:
        return self.on_registry(r, s)

    def _evil(self, r: Request, s: Adversary) -> Answer:
        return self.on_evil(r, s)

    def _realm(self, r: Request, s: Adversary) -> Answer:
        return self.on_realm(r, s)

    def challenge(self) -> Answer:
        realm = f"{self.realm.url}/token"
        return Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'})

    def assert_no_leak(self) -> None:
        leaked = [r for r in self.evil.requests if carries_secret(r)]
        assert not leaked, f"credentials sent to {self.evil.host}: {leaked}"
        assert self.evil.requests, "the hostile host was never reached: the test proves nothing"


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    with ExitStack() as stack:
        yield Hosts(stack)


def tags(
    hosts: Hosts, tmp_path: Path, *refs: str, docker_config: bool = False
) -> subprocess.CompletedProcess[str]:
    if docker_config:
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps({"auths": {hosts.registry.host: {"identitytoken": REFRESH_TOKEN}}})
        )
        source = {"type": "docker-config", "path": str(config)}
    else:
        source = {"type": "basic", "username": USER, "password": PASSWORD}
    registries = tmp_path / "registries.yaml"
    registries.write_text(
        json.dumps({"registries": {hosts.registry.host: {"credentials": source, "timeout": 10}}})
    )
    return run_cli(
        "tags",
        *(f"{hosts.registry.host}/{ref}" for ref in refs),
        "--registries",
        str(registries),
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "-o",
        "json",
    )


def test_redirect_then_paginate_sends_no_credentials_to_the_other_host(
    hosts: Hosts, tmp_path: Path
) -> None:
    """A tags/list redirected to another host whose Link leads on there gets no Basic auth."""

    def registry(r: Request, s: Adversary) -> Answer:
        if r.authorization != BASIC:
            return Answer(401, {"WWW-Authenticate": 'Basic realm="fake"'})
        return redirect(f"{hosts.evil.url}{r.path}")

    def evil(r: Request, s: Adversary) -> Answer:
        if last(r) is None:
            return page(["1.0.0"], f"{TAGS_PATH}?n=1000&last=1.0.0")
        return page(["9.9.9"])

    hosts.on_registry, hosts.on_evil = registry, evil
    result = tags(hosts, tmp_path, "acme/app")
    hosts.assert_no_leak()
    assert any(r.authorization == BASIC for r in hosts.registry.requests)
    assert result.returncode == 1
    assert "Link header points to another server" in result.stderr


def test_redirect_then_challenge_sends_no_credentials_to_the_other_realm(
    hosts: Hosts, tmp_path: Path
) -> None:
    """A 401 Bearer challenge from the host a redirect led to is not answered with our
    registry's credentials, neither at that host nor at the realm it names."""

    def registry(r: Request, s: Adversary) -> Answer:
        return redirect(f"{hosts.evil.url}{r.path}")

    def evil(r: Request, s: Adversary) -> Answer:
        if r.path.startswith("/token"):
            return Answer(200, {"Content-Type": "application/json"}, b'{"token": "stolen"}')
        if r.authorization != "Bearer stolen":
            realm = f"{hosts.evil.url}/token"
            return Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="evil"'})
        return page(["6.6.6"])

    hosts.on_registry, hosts.on_evil = registry, evil
    result = tags(hosts, tmp_path, "acme/app")
    hosts.assert_no_leak()
    assert result.returncode == 1
    assert f"redirected to {hosts.evil.host}, which asks for credentials" in result.stderr


def test_token_realm_redirect_does_not_carry_the_refresh_token(
    hosts: Hosts, tmp_path: Path
) -> None:
    """An identity token POSTed to the realm is not re-sent when the realm answers 307."""

    def registry(r: Request, s: Adversary) -> Answer:
        if r.authorization != f"Bearer {TOKEN}":
            return hosts.challenge()
        return page(["1.0.0"])

    hosts.on_registry = registry
    hosts.on_realm = lambda r, s: redirect(f"{hosts.evil.url}/token")
    hosts.on_evil = lambda r, s: Answer(
        200, {"Content-Type": "application/json"}, b'{"token": "x"}'
    )
    result = tags(hosts, tmp_path, "acme/app", docker_config=True)
    assert any(REFRESH_TOKEN in r.body.decode() for r in hosts.realm.requests)
    assert not [r for r in hosts.evil.requests if carries_secret(r)]
    assert result.returncode == 1
    assert "token requests are not redirected" in result.stderr


def test_recording_registry_credentials_reach_only_the_registry_and_its_realm(
    hosts: Hosts, tmp_path: Path
) -> None:
    """Across a token challenge, pagination, and redirects (one repository's second page
    moves to another host, another repository is redirected to a host that challenges with
    its own realm), only the registry and its own token realm ever see a credential."""

    def registry(r: Request, s: Adversary) -> Answer:
        if r.authorization != f"Bearer {TOKEN}":
            return hosts.challenge()
        if r.path.startswith("/v2/acme/moved/"):
            return redirect(f"{hosts.evil.url}{r.path}")
        if last(r) is None:
            return page(["1.0.0", "1.1.0"], f"{TAGS_PATH}?n=2&last=1.1.0")
        if last(r) == "1.1.0":
            return page(["1.2.0"], f"{TAGS_PATH}?n=2&last=1.2.0")
        return redirect(f"{hosts.evil.url}{r.path}")

    def realm(r: Request, s: Adversary) -> Answer:
        if r.authorization != BASIC:
            return Answer(401)
        return Answer(
            200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode()
        )

    def evil(r: Request, s: Adversary) -> Answer:
        if r.path.startswith("/v2/acme/moved/") and r.authorization is None:
            evil_realm = f"{hosts.evil.url}/token"
            return Answer(401, {"WWW-Authenticate": f'Bearer realm="{evil_realm}"'})
        return page(["6.6.6"], f"{TAGS_PATH}?n=2&last=6.6.6")

    hosts.on_registry, hosts.on_realm, hosts.on_evil = registry, realm, evil
    result = tags(hosts, tmp_path, "acme/app", "acme/moved")
    hosts.assert_no_leak()
    # The legitimate flows did use the credentials, so the check above is not vacuous.
    assert any(r.authorization == BASIC for r in hosts.realm.requests)
    assert any(r.authorization == f"Bearer {TOKEN}" for r in hosts.registry.requests)
    assert {r.path.split("?")[0] for r in hosts.evil.requests} == {
        TAGS_PATH,
        "/v2/acme/moved/tags/list",
    }
    assert result.returncode == 1
    assert "Link header points to another server" in result.stderr
    assert "which asks for credentials" in result.stderr


def test_the_request_hook_strips_credentials_bound_elsewhere() -> None:
    """The last line of defence: any request carrying Authorization to a place other than
    the registry (an https upgrade of it included) or its realm loses the header."""
    realm: list[str | None] = [None]
    scope = CredentialScope("http://127.0.0.1:5000", realm=lambda: realm[0])

    def sent(url: str) -> str | None:
        request = httpx.Request("GET", url, headers={"Authorization": BASIC})
        anyio.run(scope, request)
        return request.headers.get("authorization")

    assert sent("http://127.0.0.1:5000/v2/") == BASIC
    assert sent("http://127.0.0.1:5001/v2/") is None
    assert sent("http://127.0.0.2:5000/v2/") is None
    assert sent("https://auth.example.com/token") is None
    realm[0] = "https://auth.example.com/token"
    assert sent("https://auth.example.com/token?scope=x") == BASIC
    assert sent("http://auth.example.com/token") is None  # a downgrade is another place
    assert scope.withheld == 4
    upgraded = CredentialScope("http://registry.example", realm=lambda: None)
    request = httpx.Request("GET", "https://registry.example/v2/", headers={"Authorization": "x"})
    anyio.run(upgraded, request)
    assert request.headers.get("authorization") == "x"
