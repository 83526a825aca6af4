"""The runtime `apply` and `serve` share: a webhook cycle lists only what webhooks reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
from structlog.testing import capture_logs

from imagebot.config import load_policies
from imagebot.core.policy import LoadedPolicy
from imagebot.daemon.runtime import Runtime
from imagebot.registry.settings import RegistriesSettings
from tests.support.gitenv import commits, make_remote, show
from tests.support.registry import Registry, push_image

FILE = "containers:\n  - image: {a}:1.0.0\n  - image: {b}:1.0.0\n"


def two_images(tmp_path: Path, registry: Registry) -> tuple[str, str, Path, list[LoadedPolicy]]:
    """Images a and b at 1.0.0 in the registry, both in one file of an environment repo,
    and the policy of its one environment, dev."""
    a, b = f"{registry.host}/acme/a", f"{registry.host}/acme/b"
    for repo in ("acme/a", "acme/b"):
        push_image(registry, repo, "1.0.0")
    remote = make_remote(tmp_path, {"env/app.yaml": FILE.format(a=a, b=b).encode()})
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo: {{url: {remote}, path: env}}
            images:
              - {{name: a, repository: {a}}}
              - {{name: b, repository: {b}}}
            """
        )
    )
    return a, b, remote, list(load_policies(policies).environments)


def test_webhook_cycle_reuses_listings_of_repositories_no_webhook_reported(
    tmp_path: Path, registry: Registry
) -> None:
    """After a push of both a and b where only a's webhook arrived, a webhook cycle moves a
    (listed again) and keeps b (its last listing reused); the next scheduled cycle lists
    everything and moves b too."""
    a, b, remote, envs = two_images(tmp_path, registry)

    async def main() -> list[bytes]:
        seen = []
        async with Runtime(settings=RegistriesSettings(), cache_dir=tmp_path / "c") as rt:
            await rt.run_cycle(envs, publish=True)
            seen.append(show(remote, "env/app.yaml"))
            push_image(registry, "acme/a", "1.1.0")
            push_image(registry, "acme/b", "1.1.0")
            rt.pushed(a)
            await rt.run_cycle(envs, publish=True, known_tags=True)
            seen.append(show(remote, "env/app.yaml"))
            await rt.run_cycle(envs, publish=True)
            seen.append(show(remote, "env/app.yaml"))
        return seen

    first, webhook, scheduled = anyio.run(main)
    assert first == FILE.format(a=a, b=b).encode()
    assert webhook == FILE.format(a=a, b=b).replace(f"{a}:1.0.0", f"{a}:1.1.0").encode()
    assert scheduled == FILE.format(a=a, b=b).replace(":1.0.0", ":1.1.0").encode()


def _policy(directory: Path, env: str, remote: Path, path: str, image: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{env}.yaml").write_text(
        f"environment: {env}\nrepo: {{url: {remote}, path: {path}}}\n"
        f"images: [{{name: app, repository: {image}}}]\n"
    )


def test_a_lock_per_repository_not_per_daemon(tmp_path: Path, registry: Registry) -> None:
    """While a push to repo A hangs, a cycle of repo B completes; a second environment of
    repo A waits for the lock and then builds on A's commit (no push race)."""
    image = f"{registry.host}/acme/app"
    for tag in ("1.0.0", "1.1.0"):
        push_image(registry, "acme/app", tag)
    deployment = f"image: {image}:1.0.0\n".encode()
    repo_a = make_remote(tmp_path / "a", {"dev/x.yaml": deployment, "qa/x.yaml": deployment})
    repo_b = make_remote(tmp_path / "b", {"prod/x.yaml": deployment})
    started, release = tmp_path / "started", tmp_path / "release"
    hook = repo_a / "hooks" / "pre-receive"
    hook.write_text(
        f"#!/bin/sh\ntouch '{started}'\n"
        f"i=0; while [ ! -e '{release}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
    )
    hook.chmod(0o755)
    policies = tmp_path / "policies"
    _policy(policies, "dev", repo_a, "dev", image)
    _policy(policies, "qa", repo_a, "qa", image)
    _policy(policies, "prod", repo_b, "prod", image)
    envs = {p.name: p for p in load_policies(policies).environments}
    done: list[str] = []

    async def main() -> None:
        async with (
            Runtime(settings=RegistriesSettings(), cache_dir=tmp_path / "c") as rt,
            anyio.create_task_group() as tg,
        ):

            async def cycle(name: str) -> None:
                await rt.run_cycle([envs[name]], publish=True)
                done.append(name)

            tg.start_soon(cycle, "dev")
            for _ in range(3000):
                if started.exists():
                    break
                await anyio.sleep(0.01)
            assert started.exists(), "the push to repo A never started"
            tg.start_soon(cycle, "qa")
            await cycle("prod")
            assert done == ["prod"], "repo B finished while repo A's push hung"
            assert rt.busy(str(repo_a))
            release.touch()

    with capture_logs() as logs:
        anyio.run(main)
    assert sorted(done) == ["dev", "prod", "qa"]
    assert not [e for e in logs if e["event"] == "push_race"]
    history = commits(repo_a)
    assert len(history) == 3  # initial, dev, qa — qa on top of dev
    assert (
        show(repo_a, "dev/x.yaml")
        == show(repo_a, "qa/x.yaml")
        == b"image: " + (f"{image}:1.1.0\n".encode())
    )


def test_scan_interval_reuses_a_listing_until_it_is_due_or_a_webhook_reports_a_push(
    tmp_path: Path, registry: Registry
) -> None:
    """With `scan_interval: 600`, cycles within ten minutes reuse a's listing (a tag pushed
    meanwhile is not seen), a webhook for a makes the next cycle list it at once, and once
    the interval has passed a scheduled cycle lists again."""
    from datetime import UTC, datetime, timedelta

    from imagebot.registry.settings import parse_registries

    a, b, remote, envs = two_images(tmp_path, registry)
    settings = parse_registries(
        f"registries:\n  {registry.host}:\n    scan_interval: 600\n", source="registries.yaml"
    )
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]

    async def main() -> list[bytes]:
        seen = []
        async with Runtime(settings=settings, cache_dir=tmp_path / "c", clock=lambda: now[0]) as rt:
            await rt.run_cycle(envs, publish=True)  # lists a and b
            push_image(registry, "acme/a", "1.1.0")
            push_image(registry, "acme/b", "1.1.0")
            now[0] += timedelta(minutes=5)
            await rt.run_cycle(envs, publish=True)  # both listings are 5 minutes old
            seen.append(show(remote, "env/app.yaml"))
            rt.pushed(a)
            await rt.run_cycle(envs, publish=True)  # a is listed at once
            seen.append(show(remote, "env/app.yaml"))
            now[0] += timedelta(minutes=6)  # b's listing is 11 minutes old
            await rt.run_cycle(envs, publish=True)
            seen.append(show(remote, "env/app.yaml"))
        return seen

    within, pushed, due = anyio.run(main)
    assert within == FILE.format(a=a, b=b).encode()
    assert pushed == FILE.format(a=a, b=b).replace(f"{a}:1.0.0", f"{a}:1.1.0").encode()
    assert due == FILE.format(a=a, b=b).replace(":1.0.0", ":1.1.0").encode()
