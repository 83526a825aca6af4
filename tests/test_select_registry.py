"""Selection through the CLI against a real registry and git remote: digest following, the tag
cap, never a downgrade from a running version imagebot cannot read, per-image rule errors."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.gitenv import make_remote, show
from tests.support.registry import Registry, push_image, run_registry

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: {ref}
"""


@dataclass
class Env:
    registry: Registry
    tmp: Path

    @property
    def repo(self) -> str:
        return f"{self.registry.host}/acme/app"

    def push(self, tag: str, *, created: datetime | None = None, repo: str = "acme/app") -> str:
        return push_image(self.registry, repo, tag, created=created)

    def files(self, refs: dict[str, str], images: str) -> None:
        """Environment files (name -> image reference) and the dev policy's image entries."""
        self.remote = make_remote(
            self.tmp,
            {
                f"envs/dev/{name}.yaml": MANIFEST.format(name=name, ref=ref).encode()
                for name, ref in refs.items()
            },
        )
        self.policies = self.tmp / "policies"
        self.policies.mkdir()
        head = f"environment: dev\nrepo: {{url: {self.remote}, path: envs/dev}}\nimages:\n"
        (self.policies / "dev.yaml").write_text(head + textwrap.dedent(images))

    def cli(self, *args: str) -> tuple[int, str]:
        cache = ("--cache-dir", str(self.cache)) if args[0] != "check" else ()
        result = run_cli(*args, "--policies", str(self.policies), *cache)
        return result.returncode, result.stdout + result.stderr

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    def image_line(self, name: str = "app") -> str:
        text = show(self.remote, f"envs/dev/{name}.yaml").decode()
        return next(line.split("image: ")[1] for line in text.splitlines() if "image: " in line)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with run_registry(tmp_path / "registry") as registry:
        yield Env(registry, tmp_path)


def test_digest_strategy_pins_and_follows_a_repushed_tag(env: Env) -> None:
    """strategy digest with follow: apply pins the followed tag's digest, and moves to the new
    digest when the tag is pushed again."""
    first = env.push("stable", created=datetime(2025, 1, 1, tzinfo=UTC))
    env.push("1.0.0")
    env.files(
        {"app": f"{env.repo}:stable"},
        f"""\
          - name: app
            repository: {env.repo}
            strategy: digest
            follow: stable
        """,
    )
    code, out = env.cli("apply")
    assert code == 0, out
    assert env.image_line() == f"{env.repo}:stable@{first}"
    second = env.push("stable", created=datetime(2025, 2, 1, tzinfo=UTC))
    assert second != first
    code, out = env.cli("apply")
    assert code == 0, out
    assert env.image_line() == f"{env.repo}:stable@{second}"


def test_tag_cap_keeps_the_newest_versions_and_logs_the_dropped(env: Env) -> None:
    """With tag_cap 3 over v1.1.0 … v1.12.0 (listed lexically), the cap keeps v1.10.0-v1.12.0
    and the log names the newest tags it dropped."""
    for minor in range(1, 13):
        env.push(f"v1.{minor}.0")
    config = env.tmp / "registries.yaml"
    config.write_text(f"registries:\n  {env.registry.host}:\n    tag_cap: 3\n")
    result = run_cli(
        "tags", env.repo, "--registries", str(config), "--cache", str(env.tmp / "c.db")
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["v1.10.0", "v1.11.0", "v1.12.0"]
    assert "tag_cap_reached" in result.stderr
    assert "v1.9.0" in result.stderr and "dropped" in result.stderr


def test_newest_build_stays_when_the_running_tag_vanished(env: Env) -> None:
    """newest-build: the running tag is gone from the registry, so its build time is unknown;
    the image stays (an older build must not replace a newer one) and the plan says why."""
    env.push("main-aaaaaaa", created=datetime(2025, 1, 10, tzinfo=UTC))
    env.push("main-bbbbbbb", created=datetime(2025, 2, 10, tzinfo=UTC))
    env.files(
        {"app": f"{env.repo}:main-ccccccc"},
        f"""\
          - name: app
            repository: {env.repo}
            strategy: newest-build
            tags: {{include: '^main-'}}
        """,
    )
    code, out = env.cli("apply", "--explain")
    assert code == 0, out
    assert env.image_line() == f"{env.repo}:main-ccccccc"
    assert "main-ccccccc has no known creation time" in out


def test_unreadable_running_version_stays_unless_replace_unreadable(env: Env) -> None:
    """A running 2.5.0.1 that semver cannot read is not replaced by 1.2.0; with
    replace_unreadable: true it is."""
    env.push("1.2.0")
    entry = f"""\
          - name: app
            repository: {env.repo}
        """
    env.files({"app": f"{env.repo}:2.5.0.1"}, entry)
    code, out = env.cli("apply", "--explain")
    assert code == 0, out
    assert env.image_line() == f"{env.repo}:2.5.0.1"
    assert "running 2.5.0.1 is not a version" in out
    (env.policies / "dev.yaml").write_text(
        (env.policies / "dev.yaml").read_text() + "  replace_unreadable: true\n"
    )
    code, out = env.cli("apply")
    assert code == 0, out
    assert env.image_line() == f"{env.repo}:1.2.0"


def test_digest_only_reference_resolves_its_tag_before_moving(env: Env) -> None:
    """An image pinned by digest alone: the digest of 2.0.0 is never moved to 1.2.0 (outside
    ^1 it is not a downgrade candidate), while the digest of 1.1.0 moves to 1.2.0."""
    one_one = env.push("1.1.0")
    env.push("1.2.0")
    two = env.push("2.0.0")
    env.files(
        {"app": f"{env.repo}@{two}", "old": f"{env.repo}@{one_one}"},
        f"""\
          - name: app
            repository: {env.repo}
            range: "^1"
        """,
    )
    code, out = env.cli("apply", "-v")
    assert code == 0, out
    assert f"app stays at {two}: no tag imagebot checked carries this digest" in out
    assert env.image_line("app") == f"{env.repo}@{two}"
    assert env.image_line("old").startswith(f"{env.repo}:1.2.0@sha256:")


def test_one_failing_rule_leaves_the_other_images_planned(env: Env) -> None:
    """A catastrophic include regex fails only its image, named with file:line and field; the
    other image is still planned and applied."""
    env.push("1.0.0")
    env.push("1.1.0")
    env.push("a" * 60 + "b", repo="acme/slow")
    env.files(
        {"app": f"{env.repo}:1.0.0", "slow": f"{env.registry.host}/acme/slow:x"},
        f"""\
          - name: slow
            repository: {env.registry.host}/acme/slow
            strategy: lexical
            tags:
              include: '^(a|aa)+$'
          - name: app
            repository: {env.repo}
        """,
    )
    code, out = env.cli("apply", "-o", "json")
    assert code == 1
    doc, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])  # stdout comes first
    problems = doc["environments"][0]["problems"]
    assert any(
        "image slow" in p and "dev.yaml:8: images[0].tags.include" in p and "backtracks" in p
        for p in problems
    ), problems
    assert env.image_line("app") == f"{env.repo}:1.1.0"


def test_check_warns_about_digest_without_follow_and_odd_ignore_entries(env: Env) -> None:
    """check reports strategy digest without follow, an ignore entry that is no tag, glob or
    range, and a range that reads differently in Flux and Argo CD unless range_style says
    which is meant, each with file:line, and still accepts the file."""
    env.files(
        {"app": f"{env.repo}:latest"},
        f"""\
          - name: app
            repository: {env.repo}
            strategy: digest
          - name: other
            repository: {env.repo}
            strategy: numeric
            ignore: ["> 5", "*-debug"]
          - name: ported
            repository: {env.repo}
            range: ">=1.2.0-0"
          - name: said
            repository: {env.repo}
            range: ">=1.2.0-0"
            range_style: masterminds
        """,
    )
    code, out = env.cli("check")
    assert code == 0, out
    assert "dev.yaml:6: images[0].strategy: strategy digest without follow" in out
    assert "dev.yaml:10: images[1].ignore: ignore entry '> 5'" in out
    assert "'*-debug'" not in out
    assert "dev.yaml:13: images[2].range: range '>=1.2.0-0' spells a prerelease" in out
    assert "images[3].range" not in out


def test_min_age_plan_reports_first_seen_for_reproducible_builds(env: Env) -> None:
    """A tag built 1970-01-01 has no real build time: min_age counts from first sight, and the
    JSON explanation names the gate and which time counted."""
    env.push("1.0.0")
    env.push("1.1.0", created=datetime(1970, 1, 1, tzinfo=UTC))
    env.files(
        {"app": f"{env.repo}:1.0.0"},
        f"""\
          - name: app
            repository: {env.repo}
            min_age: 1d
        """,
    )
    code, out = env.cli("plan", "--explain", "-o", "json")
    assert code == 0, out
    doc, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    [decision] = doc["environments"][0]["decisions"]
    verdict = next(v for v in decision["verdicts"] if v["tag"] == "1.1.0")
    assert verdict["gate"] == "min_age" and verdict["data"]["age_from"] == "first seen"
    assert verdict["reason"].startswith("rejected: too new (first seen")
