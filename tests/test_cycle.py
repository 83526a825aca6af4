"""End to end: a real registry, a real git remote, and imagebot's cycle commands."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from imagebot.cache import Cache
from imagebot.config import load_policies
from imagebot.engine import run_cycle
from imagebot.registry.client import RegistryClient
from imagebot.registry.manifests import ImageInfo
from tests.support.cli import run_cli
from tests.support.gitenv import commits, make_remote, push_files, show, trailers
from tests.support.registry import Registry, push_image, run_registry

DEPLOYMENT = """\
# app in dev
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: "{image}:1.0.0"   # kept by imagebot
"""


@dataclass
class Setup:
    registry: Registry
    remote: Path
    policies: Path
    cache: Path
    image: str
    digests: dict[str, str]

    def cli(self, *args: str) -> tuple[int, str]:
        result = run_cli(*args, "--policies", str(self.policies), "--cache-dir", str(self.cache))
        return result.returncode, result.stdout + result.stderr


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with run_registry(tmp_path / "registry") as registry:
        image = f"{registry.host}/acme/app"
        digests = {
            tag: push_image(registry, "acme/app", tag)
            for tag in ("1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0")
        }
        remote = make_remote(
            tmp_path,
            {
                "envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode(),
                "envs/dev/notes.yaml": b"note: nothing to see\n",
                "envs/prod/app.yaml": DEPLOYMENT.format(image=image).encode(),
            },
        )
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "dev.yaml").write_text(
            textwrap.dedent(
                f"""\
                environment: dev
                repo: {{url: {remote}, path: envs/dev}}
                images:
                  - name: app
                    repository: {image}
                    range: "^1.0"
                """
            )
        )
        yield Setup(registry, remote, policies, tmp_path / "cache", image, digests)


def test_one_cycle_makes_one_commit_then_none(setup: Setup) -> None:
    """With 1.0.0…2.0.0 pushed and ^1.0, apply commits 1.0.0 → 1.1.0 once; a rerun, nothing."""
    before = show(setup.remote, "envs/dev/app.yaml")
    code, out = setup.cli("apply")
    assert code == 0, out
    history = commits(setup.remote)
    assert len(history) == 2
    after = show(setup.remote, "envs/dev/app.yaml")
    assert after == before.replace(b"app:1.0.0", b"app:1.1.0")
    assert show(setup.remote, "envs/prod/app.yaml") == before, "other environments untouched"
    assert trailers(setup.remote) == [
        ("Imagebot-Environment", "dev"),
        ("Imagebot-Image", setup.image),
        ("Imagebot-From", "1.0.0"),
        ("Imagebot-To", "1.1.0"),
        ("Imagebot-Digest", setup.digests["1.1.0"]),
    ]

    code, out = setup.cli("apply")
    assert code == 0, out
    assert commits(setup.remote) == history
    assert "dev: up to date" in out


def test_plan_prints_diff_and_summary_and_publishes_nothing(setup: Setup) -> None:
    """`plan` shows the diff and a summary line, as text and JSON, and pushes nothing."""
    code, out = setup.cli("plan")
    assert code == 0, out
    assert f'-          image: "{setup.image}:1.0.0"   # kept by imagebot' in out
    assert f'+          image: "{setup.image}:1.1.0"   # kept by imagebot' in out
    assert f"dev: app ({setup.image}) 1.0.0 -> 1.1.0  [envs/dev/app.yaml:11]" in out
    code, out = setup.cli("plan", "--explain")
    explained = out[out.index("dev: app (running 1.0.0):") :].splitlines()
    verdicts = [(line.split()[1], line.split()[0]) for line in explained[2:6]]
    # oldest to newest by version, whatever order the registry listed them in
    assert verdicts == [("1.0.0", "+"), ("1.1.0", "*"), ("2.0.0-rc.1", "-"), ("2.0.0", "-")], out
    result = run_cli(
        "plan", "--output", "json", "--policies", str(setup.policies),
        "--cache-dir", str(setup.cache),
    )  # fmt: skip
    doc = json.loads(result.stdout)
    (env,) = doc["environments"]
    (change,) = env["changes"]
    assert change["from"] == {"tag": "1.0.0", "digest": None}
    assert change["to"] == {"tag": "1.1.0", "digest": None}
    assert change["image_digest"] == setup.digests["1.1.0"]
    assert env["diff"].startswith("--- a/envs/dev/app.yaml\n+++ b/envs/dev/app.yaml\n")
    assert len(commits(setup.remote)) == 1


def test_next_release_gives_the_next_bump(setup: Setup) -> None:
    """After a newer matching tag is pushed, the next cycle moves on to it."""
    assert setup.cli("apply")[0] == 0
    push_image(setup.registry, "acme/app", "1.2.0")
    push_image(setup.registry, "acme/app", "3.0.0")
    code, out = setup.cli("apply")
    assert code == 0, out
    assert f"{setup.image}:1.2.0".encode() in show(setup.remote, "envs/dev/app.yaml")
    assert ("Imagebot-From", "1.1.0") in trailers(setup.remote)
    assert len(commits(setup.remote)) == 3


def test_digest_pin_writes_tag_and_digest(setup: Setup) -> None:
    """`digest: pin` writes tag@sha256:… with the digest the registry reports."""
    policy = setup.policies / "dev.yaml"
    policy.write_text(policy.read_text() + "    digest: pin\n")
    assert setup.cli("apply")[0] == 0
    expected = f"{setup.image}:1.1.0@{setup.digests['1.1.0']}".encode()
    assert expected in show(setup.remote, "envs/dev/app.yaml")


def test_failing_image_does_not_stop_the_others(setup: Setup) -> None:
    """A repository the registry does not know is reported; the other image still moves."""
    missing = f"{setup.registry.host}/acme/missing"
    push_files(
        setup.remote,
        {"envs/dev/missing.yaml": DEPLOYMENT.format(image=missing).encode()},
        message="add missing",
    )
    policy = setup.policies / "dev.yaml"
    policy.write_text(
        policy.read_text() + f'  - name: missing\n    repository: {missing}\n    range: "^1.0"\n'
    )
    code, out = setup.cli("apply")
    assert code == 1
    assert "acme/missing" in out and "error:" in out
    assert f"{setup.image}:1.1.0".encode() in show(setup.remote, "envs/dev/app.yaml")


def test_push_race_is_retried_on_the_new_head(setup: Setup) -> None:
    """A human push landing mid-cycle is kept, and imagebot's change lands on top of it."""

    class HumanPushesDuringScan:
        """A registry seam that lets a human push to the env repo while tags are listed."""

        def __init__(self, inner: RegistryClient) -> None:
            self.inner = inner
            self.pushed: str | None = None

        async def list_tags(self, repository: str) -> list[str]:
            if self.pushed is None:
                self.pushed = push_files(
                    setup.remote, {"envs/dev/notes.yaml": b"note: human\n"}, message="human"
                )
            return await self.inner.list_tags(repository)

        async def digest(self, repository: str, tag: str) -> str:
            return await self.inner.digest(repository, tag)

        async def first_seen(self, repository: str) -> dict[str, datetime]:
            return await self.inner.first_seen(repository)

        async def image_info(
            self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
        ) -> ImageInfo:
            return await self.inner.image_info(repository, tag, created=created, platform=platform)

    async def cycle() -> None:
        policies = load_policies(setup.policies)
        async with RegistryClient() as client:
            registry = HumanPushesDuringScan(client)
            result = await run_cycle(
                policies.environments,
                registry=registry,
                repos_dir=setup.cache,
                publish=True,
            )
        assert result.ok, result
        (env,) = result.environments
        assert env.commit is not None
        assert commits(setup.remote)[1] == registry.pushed

    anyio.run(cycle)
    assert show(setup.remote, "envs/dev/notes.yaml") == b"note: human\n"
    assert f"{setup.image}:1.1.0".encode() in show(setup.remote, "envs/dev/app.yaml")
    assert len(commits(setup.remote)) == 3


MULTI_DOC = (
    "# Two workloads, CRLF line endings, quoted and unquoted images\r\n"
    "---\r\n"
    "apiVersion: apps/v1\r\n"
    "kind: Deployment\r\n"
    "metadata: {name: web}   # flow style stays\r\n"
    "spec:\r\n"
    "  template:\r\n"
    "    spec:\r\n"
    "      containers:\r\n"
    "      - name: web\r\n"
    "        image: '{image}:1.0.0'  # single-quoted\r\n"
    "      initContainers:\r\n"
    "      - name: init\r\n"
    "        image: {image}:1.0.0\r\n"
    "---\r\n"
    "# second document\r\n"
    "apiVersion: batch/v1\r\n"
    "kind: CronJob\r\n"
    "spec:\r\n"
    "  jobTemplate:\r\n"
    "    spec:\r\n"
    "      template:\r\n"
    "        spec:\r\n"
    "          containers:\r\n"
    '            - image: "{image}:1.0.0"\r\n'
    '              args: ["run {image}:1.0.0"]\r\n'
)


def test_multi_document_crlf_manifest_changes_only_version_bytes(setup: Setup) -> None:
    """Comments, quoting styles, CRLF and several documents survive; only versions change."""
    original = MULTI_DOC.replace("{image}", setup.image).encode()
    push_files(setup.remote, {"envs/dev/multi.yaml": original}, message="multi")
    code, out = setup.cli("apply")
    assert code == 0, out
    expected = (
        MULTI_DOC.replace("{image}:1.0.0", "{image}:1.1.0")
        .replace('["run {image}:1.1.0"]', '["run {image}:1.0.0"]')
        .replace("{image}", setup.image)
        .encode()
    )
    assert show(setup.remote, "envs/dev/multi.yaml") == expected


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def cycle_at(setup: Setup, clock: FakeClock) -> list[str]:
    """Run one publishing cycle at the clock's time; return the problems it reported."""

    async def run() -> list[str]:
        policies = load_policies(setup.policies)
        cache = Cache(setup.cache / "tags.sqlite")
        try:
            async with RegistryClient(cache=cache, clock=clock) as client:
                result = await run_cycle(
                    policies.environments,
                    registry=client,
                    repos_dir=setup.cache,
                    publish=True,
                    clock=clock,
                )
        finally:
            cache.close()
        return [p for r in result.environments for p in r.plan.problems]

    setup.cache.mkdir(parents=True, exist_ok=True)
    return anyio.run(run)


def test_min_age_waits_for_first_seen_time(setup: Setup) -> None:
    """With min_age 1h and reproducible builds (built 1970-01-01: no real build time), a tag
    first seen now is not taken; an hour later (by clock) it is."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for tag in ("1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"):
        push_image(setup.registry, "acme/app", tag, created=epoch)
    policy = setup.policies / "dev.yaml"
    policy.write_text(policy.read_text() + "    min_age: 1h\n")
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert cycle_at(setup, clock) == []
    assert len(commits(setup.remote)) == 1, "every tag is seen for the first time: all too new"
    clock.now += timedelta(minutes=59)
    cycle_at(setup, clock)
    assert len(commits(setup.remote)) == 1
    clock.now += timedelta(minutes=2)
    cycle_at(setup, clock)
    assert len(commits(setup.remote)) == 2
    assert ("Imagebot-To", "1.1.0") in trailers(setup.remote)


def test_min_age_counts_the_build_time_on_first_sight(setup: Setup) -> None:
    """An image built long before imagebot first saw it is old enough at once; one built a
    minute ago waits, and the plan's explanation says which time counted."""
    clock = FakeClock(datetime.now(UTC))  # the CLI below judges ages by the real clock
    push_image(setup.registry, "acme/app", "1.2.0", created=clock.now - timedelta(minutes=1))
    policy = setup.policies / "dev.yaml"
    policy.write_text(policy.read_text() + "    min_age: 7d\n")
    assert cycle_at(setup, clock) == []
    assert ("Imagebot-To", "1.1.0") in trailers(setup.remote)  # built 2024-01-01
    code, out = setup.cli("plan", "--explain")
    assert code == 0, out
    assert "1.2.0" in out and "too new (built" in out


def test_newest_build_uses_image_creation_time(setup: Setup) -> None:
    """newest-build picks the tag whose image was built last, whatever its name sorts as."""
    base = datetime(2026, 2, 1, tzinfo=UTC)
    for tag, hours in (("build-b", 3), ("build-c", 1), ("build-a", 2)):
        push_image(setup.registry, "acme/app", tag, created=base + timedelta(hours=hours))
    policy = setup.policies / "dev.yaml"
    policy.write_text(
        policy.read_text().replace('range: "^1.0"', "strategy: newest-build")
        + "    tags: {include: '^build-'}\n"
    )
    code, out = setup.cli("apply")
    assert code == 0, out
    assert f"{setup.image}:build-b".encode() in show(setup.remote, "envs/dev/app.yaml")


def test_unsafe_file_is_left_untouched_and_reported(setup: Setup) -> None:
    """A file with a duplicate key is reported by name and kept byte for byte; others move."""
    unsafe = DEPLOYMENT.format(image=setup.image) + "          image: other:1\n"
    push_files(setup.remote, {"envs/dev/unsafe.yaml": unsafe.encode()}, message="unsafe")
    code, out = setup.cli("apply")
    assert code == 1
    assert "envs/dev/unsafe.yaml" in out and "left untouched" in out
    assert show(setup.remote, "envs/dev/unsafe.yaml") == unsafe.encode()
    assert f"{setup.image}:1.1.0".encode() in show(setup.remote, "envs/dev/app.yaml")


def test_broken_policy_stops_only_its_environment(setup: Setup) -> None:
    """An invalid policy file is reported with file:line while valid environments still move."""
    (setup.policies / "prod.yaml").write_text(
        f"environment: prod\nrepo: {{url: {setup.remote}, path: envs/prod}}\nimages: 3\n"
    )
    code, out = setup.cli("apply")
    assert code == 1
    assert f"error: {setup.policies / 'prod.yaml'}:3: images: " in out
    assert f"{setup.image}:1.1.0".encode() in show(setup.remote, "envs/dev/app.yaml")
    assert f"{setup.image}:1.0.0".encode() in show(setup.remote, "envs/prod/app.yaml")


def test_environments_sharing_a_repo_each_get_their_commit(setup: Setup) -> None:
    """dev and prod in one repo: each environment lands its own commit in the same cycle."""
    (setup.policies / "prod.yaml").write_text(
        (setup.policies / "dev.yaml")
        .read_text()
        .replace("environment: dev", "environment: prod")
        .replace("envs/dev", "envs/prod")
    )
    code, out = setup.cli("apply")
    assert code == 0, out
    assert len(commits(setup.remote)) == 3
    assert "push_race" not in out, "the second environment starts from the first one's commit"
    for env in ("dev", "prod"):
        assert f"{setup.image}:1.1.0".encode() in show(setup.remote, f"envs/{env}/app.yaml")


def test_wrong_repo_path_is_reported(setup: Setup) -> None:
    """A repo.path with no YAML files is an error naming the path, not a silent no-op."""
    policy = setup.policies / "dev.yaml"
    policy.write_text(policy.read_text().replace("envs/dev", "envs/typo"))
    code, out = setup.cli("plan")
    assert code == 1
    assert "repo.path 'envs/typo' holds no YAML files on branch 'main'" in out
