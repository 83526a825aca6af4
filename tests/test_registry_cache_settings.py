"""The SQLite tag cache and registries.yaml settings."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from imagebot.cache import Cache
from imagebot.errors import PolicyError
from imagebot.registry import RegistriesSettings, RegistryClient, load_registries
from imagebot.registry.settings import parse_registries
from imagebot.registry.tags import TagCollector, is_artifact_tag, next_link
from tests.support.clock import FakeClock
from tests.support.faultproxy import Rewrite, Seen, run_fault_proxy
from tests.support.registry import Registry, push_image

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_first_seen_survives_restart_and_stamps_only_new_tags(
    registry: Registry, tmp_path: Path
) -> None:
    """First-seen times survive a client restart; new tags get the later time."""
    push_image(registry, "acme/app", "1.0")
    repo = f"{registry.host}/acme/app"
    path = tmp_path / "cache" / "registry.sqlite"
    clock = FakeClock(T0)

    async def scan_once() -> dict[str, datetime]:
        cache = Cache(path)
        try:
            async with RegistryClient(cache=cache, clock=clock.now) as client:
                await client.list_tags(repo)
                return await client.first_seen(repo)
        finally:
            cache.close()

    assert anyio.run(scan_once) == {"1.0": T0}
    clock.advance(3600)
    push_image(registry, "acme/app", "1.1")
    assert anyio.run(scan_once) == {"1.0": T0, "1.1": T0 + timedelta(hours=1)}
    path.unlink()
    clock.advance(60)
    later = T0 + timedelta(hours=1, minutes=1)
    assert anyio.run(scan_once) == {"1.0": later, "1.1": later}


def test_first_seen_keeps_removed_and_readded_tags_at_their_first_time(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    t1, t2, t3 = T0, T0 + timedelta(days=1), T0 + timedelta(days=2)
    cache.record_tags("r", ["1.0", "1.1"], t1)
    cache.record_tags("r", ["1.1", "1.2"], t2)  # 1.0 deleted from the registry
    cache.record_tags("r", ["1.0", "1.1", "1.2", "1.3"], t3)  # and pushed again
    assert cache.first_seen("r") == {"1.0": t1, "1.1": t1, "1.2": t2, "1.3": t3}
    assert cache.tags("r") == ["1.0", "1.1", "1.2", "1.3"]
    cache.close()
    reopened = Cache(tmp_path / "c.sqlite")
    assert reopened.first_seen("r")["1.2"] == t2
    assert reopened.first_seen("unknown") == {}
    reopened.close()


def test_an_unreadable_or_outdated_cache_file_is_moved_aside_and_started_afresh(
    tmp_path: Path,
) -> None:
    """A file that is no SQLite database, or one in the format of the row-per-tag days, is
    renamed to NAME.unreadable with a warning naming both paths; the new file works."""
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"file is not a database " * 100)
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE first_seen (repository INTEGER, tag TEXT, seen_at REAL)")
    db.commit()
    db.close()
    for path in (garbage, old):
        with capture_logs() as logs:
            cache = Cache(path)
        cache.record_tags("r", ["1.0"], T0)
        assert cache.first_seen("r") == {"1.0": T0}
        cache.close()
        (event,) = [e for e in logs if e["event"] == "cache_unreadable"]
        assert (event["log_level"], event["path"]) == ("warning", str(path))
        assert event["moved_to"] == f"{path}.unreadable"
        assert Path(event["moved_to"]).exists()
        reopened = Cache(path)  # the new file is read back without a warning
        assert reopened.first_seen("r") == {"1.0": T0}
        reopened.close()
    assert Path(f"{garbage}.unreadable").read_bytes() == b"file is not a database " * 100


def test_etag_answered_304_reuses_cached_page(registry: Registry, tmp_path: Path) -> None:
    """A registry that sends ETags gets If-None-Match next time; its 304 reuses the stored tags."""
    push_image(registry, "acme/app", "1.0")

    def rule(seen: Seen) -> Rewrite | None:
        if seen.headers.get("If-None-Match") == '"v1"':
            return Rewrite(lambda s, h, b: (304, {"ETag": '"v1"'}, b""))
        return Rewrite(lambda s, h, b: (s, {**h, "ETag": '"v1"'}, b))

    cache = Cache(tmp_path / "c.sqlite")
    with run_fault_proxy(registry.url, rule) as proxy:

        async def main() -> tuple[list[str], list[str]]:
            async with RegistryClient(cache=cache) as client:
                first = await client.list_tags(f"{proxy.host}/acme/app")
                second = await client.list_tags(f"{proxy.host}/acme/app")
                return first, second

        assert anyio.run(main) == (["1.0"], ["1.0"])
    cache.close()
    assert [s.headers.get("If-None-Match") for s in proxy.seen] == [None, '"v1"']


def test_artifact_tags_are_recognised() -> None:
    """cosign .sig/.att/.sbom tags and bare referrers tags are artifacts; versions are not."""
    digest = "sha256-" + "0123456789abcdef" * 4
    for tag in (f"{digest}.sig", f"{digest}.att", f"{digest}.sbom", digest):
        assert is_artifact_tag(tag)
    for tag in ("1.2.3", "sha256", "latest", "sha256-abc.sig"):
        assert not is_artifact_tag(tag)


def test_cap_keeps_the_newest_end_for_each_order() -> None:
    """A cap keeps the last tags of lexical and oldest-first lists, the first of newest-first."""
    for order, expected in (("lexical", ["c", "d"]), ("oldest-first", ["c", "d"])):
        c = TagCollector(cap=2, order=order)  # type: ignore[arg-type]
        c.add(["a", "b"])
        c.add(["c", "d"])
        assert (c.tags, c.capped, c.done) == (expected, True, False)
    newest = TagCollector(cap=2, order="newest-first")
    newest.add(["d", "c"])
    assert newest.done and newest.tags == ["d", "c"]


def test_oldest_first_registry_with_cap_keeps_newest(registry: Registry) -> None:
    """A registry listing oldest first, paged 2 at a time, capped at 3, yields the 3 newest tags."""
    tags = [f"v{i}" for i in range(1, 8)]
    for tag in tags:
        push_image(registry, "acme/app", tag)
    from tests.support.faultproxy import paginate

    with run_fault_proxy(
        registry.url, lambda s: paginate(s, order=lambda t: sorted(t, key=lambda x: int(x[1:])))
    ) as proxy:
        settings = parse_registries(
            f"registries:\n  {proxy.host}:\n    page_size: 2\n    tag_cap: 3\n"
            "    tag_order: oldest-first\n",
            source="registries.yaml",
        )

        async def main() -> list[str]:
            async with RegistryClient(settings=settings) as client:
                return await client.list_tags(f"{proxy.host}/acme/app")

        assert anyio.run(main) == ["v5", "v6", "v7"]


def test_next_link_resolution() -> None:
    """Relative next links resolve against the request; other rels are ignored."""
    base = "https://r.example/v2/a/tags/list?n=2"
    header = '</v2/a/tags/list?n=2&last=b>; rel="next", <https://r.example/x>; rel="prev"'
    assert next_link(header, base) == "https://r.example/v2/a/tags/list?n=2&last=b"
    assert next_link('<https://r.example/x>; rel="prev"', base) is None
    assert next_link(None, base) is None


def test_settings_resolution_order() -> None:
    """Built-in defaults, then defaults:, then the host's own entry; loopback is insecure."""
    settings = parse_registries(
        "defaults:\n  concurrency: 3\nregistries:\n  docker.io:\n    rate: 2\n",
        source="r.yaml",
    )
    hub = settings.for_host("docker.io")
    assert (hub.concurrency, hub.rate, hub.insecure) == (3, 2.0, False)
    assert settings.for_host("127.0.0.1:5000").insecure
    assert settings.for_host("localhost:5000").insecure
    assert not settings.for_host("registry.example.com").insecure
    assert (
        settings.with_insecure({"registry.example.com"}).for_host("registry.example.com").insecure
    )
    assert RegistriesSettings().for_host("ghcr.io").rate == 20.0
    assert RegistriesSettings().for_host("abc.azurecr.io").concurrency == 8


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "registries:\n  ghcr.io:\n    concurrency: 0\n",
            "r.yaml:3: registries.ghcr.io.concurrency:",
        ),
        (
            "registries:\n  ghcr.io:\n    platform: arm64\n",
            "r.yaml:3: registries.ghcr.io.platform:",
        ),
        (
            "registries:\n  ghcr.io:\n    credentials:\n      type: basic\n      usernme: x\n",
            "r.yaml:5: registries.ghcr.io.credentials.usernme: unknown field",
        ),
        ("registries:\n  a/b:\n    insecure: true\n", "r.yaml:1: registries:"),
        ("registries: [\n", "r.yaml:2: invalid YAML"),
    ],
)
def test_settings_errors_name_file_line_and_field(text: str, problem: str) -> None:
    """Each invalid registries.yaml is reported with file:line: field."""
    with pytest.raises(PolicyError) as info:
        parse_registries(text, source="r.yaml")
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_load_registries_missing_file(tmp_path: Path) -> None:
    """A registries file that cannot be read is a PolicyError naming it."""
    with pytest.raises(PolicyError, match="cannot read"):
        load_registries(tmp_path / "nope.yaml")


def test_scan_interval_reuses_the_cached_listing_across_processes(
    registry: Registry, tmp_path: Path
) -> None:
    """A listing in the cache file younger than `scan_interval` answers a new client without
    a request; an older one, or one made at a later clock reading, is listed again."""
    from datetime import UTC, datetime, timedelta

    push_image(registry, "acme/app", "1.0.0")
    settings = parse_registries(
        f"registries:\n  {registry.host}:\n    scan_interval: 60\n", source="registries.yaml"
    )
    repo = f"{registry.host}/acme/app"
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    async def listing(at: datetime) -> tuple[list[str], int]:
        cache = Cache(tmp_path / "registry.sqlite")  # a new process: a new client and file
        try:
            async with RegistryClient(settings=settings, cache=cache, clock=lambda: at) as c:
                return sorted(await c.list_tags(repo)), c.requests
        finally:
            cache.close()

    assert anyio.run(listing, t0) == (["1.0.0"], 1)
    push_image(registry, "acme/app", "1.1.0")
    assert anyio.run(listing, t0 + timedelta(seconds=59)) == (["1.0.0"], 0)
    assert anyio.run(listing, t0 - timedelta(seconds=1)) == (["1.0.0", "1.1.0"], 1)
    # that listing (at t0 - 1s) is fresh for the next 60 s, unchanged tags or not
    assert anyio.run(listing, t0 + timedelta(seconds=58)) == (["1.0.0", "1.1.0"], 0)
    assert anyio.run(listing, t0 + timedelta(seconds=59)) == (["1.0.0", "1.1.0"], 1)
