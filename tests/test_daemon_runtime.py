"""The runtime `apply` and `serve` share: a webhook cycle lists only what webhooks reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio

from imagebot.config import load_policies
from imagebot.daemon.runtime import Runtime
from imagebot.registry.settings import RegistriesSettings
from tests.support.gitenv import make_remote, show
from tests.support.registry import Registry, push_image

FILE = "containers:\n  - image: {a}:1.0.0\n  - image: {b}:1.0.0\n"


def test_webhook_cycle_reuses_listings_of_repositories_no_webhook_reported(
    tmp_path: Path, registry: Registry
) -> None:
    """After a push of both a and b where only a's webhook arrived, a webhook cycle moves a
    (listed again) and keeps b (its last listing reused); the next scheduled cycle lists
    everything and moves b too."""
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
    envs = load_policies(policies).environments

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
