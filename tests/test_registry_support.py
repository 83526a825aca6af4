"""The test-support registry really is a Distribution registry the API can talk to."""

from __future__ import annotations

import httpx

from tests.conftest import BASIC_USERS, TOKEN_USERS
from tests.support.registry import ChallengeAuth, Registry, push_image
from tests.support.tokenserver import TokenServer


def test_push_then_list_and_fetch(registry: Registry) -> None:
    """A pushed image shows up in tags/list and its manifest digest matches the one returned."""
    d1 = push_image(registry, "acme/app", "1.0.0")
    d2 = push_image(registry, "acme/app", "1.1.0")
    assert d1 != d2
    tags = httpx.get(f"{registry.url}/v2/acme/app/tags/list").json()
    assert sorted(tags["tags"]) == ["1.0.0", "1.1.0"]
    head = httpx.head(
        f"{registry.url}/v2/acme/app/manifests/1.0.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert head.headers["docker-content-digest"] == d1


def test_multi_platform_push_returns_index_digest(registry: Registry) -> None:
    """With platforms, the tag points at an OCI index listing each platform."""
    digest = push_image(registry, "acme/multi", "2.0", platforms=["linux/amd64", "linux/arm64/v8"])
    r = httpx.get(
        f"{registry.url}/v2/acme/multi/manifests/2.0",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    )
    assert r.headers["docker-content-digest"] == digest
    platforms = [m["platform"] for m in r.json()["manifests"]]
    assert platforms == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]


def test_basic_registry_refuses_anonymous_and_accepts_user(basic_registry: Registry) -> None:
    """The htpasswd registry answers 401 without credentials and serves a configured user."""
    assert httpx.get(f"{basic_registry.url}/v2/").status_code == 401
    user, password = next(iter(BASIC_USERS.items()))
    push_image(basic_registry, "acme/app", "1", auth=httpx.BasicAuth(user, password))
    r = httpx.get(f"{basic_registry.url}/v2/acme/app/tags/list", auth=(user, password))
    assert r.json()["tags"] == ["1"]


def test_token_registry_accepts_issued_tokens(
    token_registry: tuple[Registry, TokenServer],
) -> None:
    """The token registry challenges with Bearer and accepts the test token server's JWTs."""
    reg, tokens = token_registry
    challenge = httpx.get(f"{reg.url}/v2/").headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and tokens.realm in challenge
    user, password = next(iter(TOKEN_USERS.items()))
    push_image(reg, "acme/app", "1", auth=ChallengeAuth(user, password))
    with httpx.Client(auth=ChallengeAuth(user, password)) as client:
        assert client.get(f"{reg.url}/v2/acme/app/tags/list").json()["tags"] == ["1"]
    assert tokens.requests and all(r.username == user for r in tokens.requests)


def test_fault_proxy_injects_and_records(registry: Registry) -> None:
    """The fault proxy forwards to the registry, answers chosen requests itself and counts all."""
    from tests.support.faultproxy import Respond, every_nth, run_fault_proxy

    push_image(registry, "acme/app", "1")
    rule = every_nth(2, Respond(429, {"Retry-After": "2"}))
    with run_fault_proxy(registry.url, rule) as proxy:
        first = httpx.get(f"{proxy.url}/v2/acme/app/tags/list")
        second = httpx.get(f"{proxy.url}/v2/acme/app/tags/list")
    assert first.json()["tags"] == ["1"]
    assert second.status_code == 429 and second.headers["retry-after"] == "2"
    assert [s.path for s in proxy.seen] == ["/v2/acme/app/tags/list"] * 2
