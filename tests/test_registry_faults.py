"""Faults and bad answers: each becomes a RegistryError naming registry and repository,
retries absorb transient trouble, and a scan goes on for every other image."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
import pytest

from imagebot.cli.tags import list_each
from imagebot.errors import RegistryError
from imagebot.registry import RegistriesSettings, RegistryClient, RegistrySettings, RetryPolicy
from tests.support.clock import FakeClock
from tests.support.faultproxy import (
    Delay,
    Drop,
    Respond,
    Rewrite,
    Seen,
    Truncate,
    run_fault_proxy,
)
from tests.support.registry import Registry, free_port, push_image

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _first(action: object, *, path: str = "/tags/list"):  # type: ignore[no-untyped-def]
    """A rule applying ``action`` to the first request whose path contains ``path``."""
    hit: list[int] = []

    def rule(seen: Seen) -> object:
        if path in seen.path and not hit:
            hit.append(seen.number)
            return action
        return None

    return rule


def _list(host: str, repository: str, clock: FakeClock, **settings: object) -> list[str]:
    async def main() -> list[str]:
        cfg = RegistriesSettings(registries={host: RegistrySettings.model_validate(settings)})
        async with RegistryClient(settings=cfg, clock=clock.now, sleep=clock.sleep) as client:
            return await client.list_tags(f"{host}/{repository}")

    return anyio.run(main)


@pytest.mark.parametrize(
    "fault",
    [Drop(), Truncate(keep=12), Respond(503), Respond(502, {"Content-Type": "text/html"}, b"<h1>")],
    ids=["dropped-connection", "truncated-json", "503", "html-502"],
)
def test_transient_fault_is_retried(registry: Registry, fault: object) -> None:
    """A dropped connection, a cut-off body or a 5xx is retried once after a backoff."""
    push_image(registry, "acme/app", "1")
    clock = FakeClock(NOW)
    with run_fault_proxy(registry.url, _first(fault)) as proxy:
        assert _list(proxy.host, "acme/app", clock) == ["1"]
    assert len(proxy.seen) == 2 and len(clock.sleeps) == 1


def test_slow_response_times_out_and_is_retried(registry: Registry) -> None:
    """An answer slower than the registry's timeout is abandoned and the request retried."""
    push_image(registry, "acme/app", "1")
    clock = FakeClock(NOW)
    with run_fault_proxy(registry.url, _first(Delay(2.0))) as proxy:
        assert _list(proxy.host, "acme/app", clock, timeout=0.3) == ["1"]
    assert len(proxy.seen) == 2 and len(clock.sleeps) == 1


def _html(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"


def _plain_text(
    status: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    kept = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return 200, {**kept, "Content-Type": "text/plain"}, body


def _bad_link(
    status: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return status, {**headers, "Link": "/v2/acme/next rel=next"}, body


def _foreign_link(
    status: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return status, {**headers, "Link": '<https://evil.example/v2/x/tags/list>; rel="next"'}, body


def _not_tags(
    status: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return status, headers, json.dumps({"name": "x", "tags": "1.0"}).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_html, "expected JSON, got text/html"),
        (_plain_text, "expected JSON, got text/plain"),
        (_bad_link, "malformed Link header"),
        (_foreign_link, "points to another server"),
        (_not_tags, "not a list of strings"),
    ],
    ids=["html-page", "wrong-content-type", "bad-link", "foreign-link", "bad-tags"],
)
def test_bad_tag_list_fails_only_its_repository(registry: Registry, change, message) -> None:  # type: ignore[no-untyped-def]
    """A broken tags/list answer is a RegistryError for that repository; the scan goes on."""
    push_image(registry, "acme/broken", "1")
    push_image(registry, "acme/fine", "2")

    def rule(seen: Seen) -> Rewrite | None:
        return Rewrite(change) if "/acme/broken/" in seen.path else None

    with run_fault_proxy(registry.url, rule) as proxy:

        async def main() -> dict[str, list[str] | RegistryError]:
            async with RegistryClient() as client:
                return await list_each(
                    client, [f"{proxy.host}/acme/broken", f"{proxy.host}/acme/fine"]
                )

        results = anyio.run(main)
    broken = results[f"{proxy.host}/acme/broken"]
    assert isinstance(broken, RegistryError)
    assert message in str(broken)
    assert broken.registry == proxy.host and broken.repository == "acme/broken"
    assert results[f"{proxy.host}/acme/fine"] == ["2"]


def _broken_manifest(
    status: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    return status, headers, json.dumps(doc).encode()


def _garbage_manifest(
    status: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return status, headers, body[: len(body) // 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_broken_manifest, "no valid 'config' descriptor"),
        (_garbage_manifest, "not valid JSON"),
        (_html, "HTML page instead of a manifest"),
    ],
    ids=["no-config", "invalid-json", "html"],
)
def test_malformed_manifest_is_registry_error(registry: Registry, change, message) -> None:  # type: ignore[no-untyped-def]
    """A manifest that is not one gives a RegistryError naming registry, repository and tag."""
    push_image(registry, "acme/app", "1.0")

    def rule(seen: Seen) -> Rewrite | None:
        return Rewrite(change) if seen.method == "GET" and "/manifests/" in seen.path else None

    with run_fault_proxy(registry.url, rule) as proxy:

        async def main() -> None:
            async with RegistryClient() as client:
                await client.image_info(f"{proxy.host}/acme/app", "1.0")

        with pytest.raises(RegistryError) as info:
            anyio.run(main)
    text = str(info.value)
    assert message in text and proxy.host in text and "acme/app" in text and "1.0" in text


def test_no_httpx_exception_leaks() -> None:
    """Refused connections, TLS to a plain-HTTP port and invalid names all raise RegistryError."""
    port = free_port()
    clock = FakeClock(NOW)

    async def attempt(call) -> BaseException | None:  # type: ignore[no-untyped-def]
        try:
            await call
        except RegistryError:
            return None
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            return exc
        return None

    async def main() -> list[BaseException | None]:
        settings = RegistriesSettings(registries={"127.0.0.1:1": RegistrySettings(insecure=False)})
        async with RegistryClient(
            settings=settings,
            clock=clock.now,
            sleep=clock.sleep,
            retry=RetryPolicy(attempts=2),
        ) as client:
            dead = f"127.0.0.1:{port}/acme/app"
            return [
                await attempt(client.list_tags(dead)),
                await attempt(client.digest(dead, "1")),
                await attempt(client.image_info(dead, "1", created=True)),
                await attempt(client.list_tags("127.0.0.1:1/acme/app")),
                await attempt(client.digest(dead, "bad tag with spaces")),
                await attempt(client.list_tags("Not A Repository!")),
            ]

    assert anyio.run(main) == [None] * 6
