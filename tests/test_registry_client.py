"""RegistryClient against a real docker-registry: tags, pagination, digests, image facts."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from imagebot.errors import NotFound, RegistryError
from imagebot.registry import RegistriesSettings, RegistryClient, RegistrySettings
from tests.support.faultproxy import paginate, run_fault_proxy
from tests.support.registry import Registry, push_image


def _settings(host: str, **values: object) -> RegistriesSettings:
    return RegistriesSettings(registries={host: RegistrySettings.model_validate(values)})


def _run(coro_fn, *args):  # type: ignore[no-untyped-def]
    return anyio.run(coro_fn, *args)


def test_lists_tags_of_anonymous_registry(registry: Registry) -> None:
    """Tags pushed to a loopback registry are listed over plain HTTP without configuration."""
    for tag in ("1.0.0", "1.1.0", "latest"):
        push_image(registry, "acme/app", tag)

    async def main() -> list[str]:
        async with RegistryClient() as client:
            return await client.list_tags(f"{registry.host}/acme/app")

    assert sorted(_run(main)) == ["1.0.0", "1.1.0", "latest"]


def test_follows_link_pagination_to_the_end(registry: Registry) -> None:
    """With a page size of 2, every page is fetched through the Link header and none is lost."""
    tags = [f"1.0.{i}" for i in range(7)]
    for tag in tags:
        push_image(registry, "acme/paged", tag)
    with run_fault_proxy(registry.url, paginate) as proxy:

        async def main() -> list[str]:
            async with RegistryClient(settings=_settings(proxy.host, page_size=2)) as client:
                return await client.list_tags(f"{proxy.host}/acme/paged")

        assert sorted(_run(main)) == sorted(tags)
    pages = [s.path for s in proxy.seen if "/tags/list" in s.path]
    assert pages == [
        "/v2/acme/paged/tags/list?n=2",
        "/v2/acme/paged/tags/list?n=2&last=1.0.1",
        "/v2/acme/paged/tags/list?n=2&last=1.0.3",
        "/v2/acme/paged/tags/list?n=2&last=1.0.5",
    ]


def test_digest_uses_head_and_never_get(registry: Registry) -> None:
    """A digest is learnt from HEAD's Docker-Content-Digest: no manifest GET is made."""
    single = push_image(registry, "acme/app", "1.0.0")
    multi = push_image(registry, "acme/app", "2.0.0", platforms=["linux/amd64", "linux/arm64"])
    with run_fault_proxy(registry.url) as proxy:

        async def main() -> tuple[str, str]:
            async with RegistryClient() as client:
                repo = f"{proxy.host}/acme/app"
                return await client.digest(repo, "1.0.0"), await client.digest(repo, "2.0.0")

        assert _run(main) == (single, multi)
    manifest_calls = [(s.method, s.path) for s in proxy.seen if "/manifests/" in s.path]
    assert manifest_calls == [
        ("HEAD", "/v2/acme/app/manifests/1.0.0"),
        ("HEAD", "/v2/acme/app/manifests/2.0.0"),
    ]


def test_image_info_reads_annotations_and_platform(registry: Registry) -> None:
    """image_info returns the index digest, the wanted platform's manifest and OCI annotations."""
    created = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    notes = {
        "org.opencontainers.image.source": "https://github.com/acme/app",
        "org.opencontainers.image.revision": "0123abc",
    }
    index = push_image(
        registry,
        "acme/app",
        "3.0.0",
        created=created,
        platforms=["linux/amd64", "linux/arm64/v8"],
        annotations=notes,
    )

    async def main() -> tuple[object, object]:
        async with RegistryClient() as client:
            repo = f"{registry.host}/acme/app"
            arm = await client.image_info(repo, "3.0.0", platform="linux/arm64", created=True)
            plain = await client.image_info(repo, "3.0.0")
            return arm, plain

    arm, plain = _run(main)
    assert arm.digest == index and plain.digest == index
    assert arm.platforms == ("linux/amd64", "linux/arm64/v8")
    assert arm.platform_digest != plain.platform_digest
    assert arm.created == created and plain.created is None
    assert (arm.source, arm.revision) == ("https://github.com/acme/app", "0123abc")


def test_image_info_missing_platform_is_not_found(registry: Registry) -> None:
    """A multi-arch image without the wanted platform gives NotFound naming the platforms."""
    push_image(registry, "acme/app", "1", platforms=["linux/amd64"])

    async def main() -> None:
        async with RegistryClient() as client:
            await client.image_info(f"{registry.host}/acme/app", "1", platform="linux/s390x")

    with pytest.raises(NotFound, match=r"no linux/s390x image \(offers linux/amd64\)"):
        _run(main)


def test_unknown_repository_is_not_found(registry: Registry) -> None:
    """Listing a repository the registry does not have gives NotFound naming it."""

    async def main() -> None:
        async with RegistryClient() as client:
            await client.list_tags(f"{registry.host}/acme/missing")

    with pytest.raises(NotFound) as info:
        _run(main)
    assert info.value.registry == registry.host and info.value.repository == "acme/missing"
    assert isinstance(info.value, RegistryError)
