"""/metrics counts registry answers by registry and status, and rate-limit waits, from the
registry client's own HTTP traffic."""

from __future__ import annotations

import re
from pathlib import Path

import anyio

from imagebot.config import load_policies
from imagebot.daemon.metrics import Metrics
from imagebot.daemon.runtime import Runtime
from imagebot.errors import NotFound
from imagebot.registry.settings import RegistriesSettings
from tests.support.faultproxy import Respond, Seen, run_fault_proxy
from tests.support.gitenv import make_remote
from tests.support.registry import Registry, push_image


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m[1] != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m[3])
    return 0.0


def test_registry_requests_and_rate_limit_waits_are_counted(
    tmp_path: Path, registry: Registry
) -> None:
    """A 429 (Retry-After: 0) on the first tag listing is counted as a rate-limit wait and
    as a 429 answer; the retried listing as a 200; tags seen and a failed cycle's errors."""
    push_image(registry, "acme/app", "1.0.0")
    throttled: list[int] = []

    def once_429(seen: Seen) -> Respond | None:
        if "/tags/list" in seen.path and not throttled:
            throttled.append(seen.number)
            return Respond(429, {"Retry-After": "0"}, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}')
        return None

    with run_fault_proxy(registry.url, once_429) as proxy:
        image = f"{proxy.host}/acme/app"
        remote = make_remote(tmp_path, {"env/x.yaml": f"image: {image}:1.0.0\n".encode()})
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "dev.yaml").write_text(
            f"environment: dev\nrepo: {{url: {remote}, path: env}}\n"
            f"images: [{{name: app, repository: {image}}}]\n"
        )
        (policies / "broken.yaml").write_text(
            f"environment: qa\nrepo: {{url: {tmp_path / 'missing.git'}}}\n"
            f"images: [{{name: app, repository: {image}}}]\n"
        )
        envs = load_policies(policies).environments
        metrics = Metrics()

        async def main() -> None:
            async with Runtime(
                settings=RegistriesSettings(),
                cache_dir=tmp_path / "c",
                event_hooks={"response": [metrics.on_response]},
                wrap_registry=metrics.metered,
            ) as rt:
                result = await rt.run_cycle(envs, publish=True)
                metrics.record_cycle(result, trigger="schedule", seconds=0.5, now=rt.clock())

        anyio.run(main)
    text = metrics.exposition().decode()
    host = proxy.host
    assert throttled
    assert sample(text, "imagebot_registry_rate_limit_waits_total", registry=host) == 1
    assert sample(text, "imagebot_registry_requests_total", registry=host, status="429") == 1
    assert sample(text, "imagebot_registry_requests_total", registry=host, status="200") >= 1
    assert sample(text, "imagebot_tags_seen", repository=image) == 1
    assert sample(text, "imagebot_errors_total", kind="git") == 1
    assert sample(text, "imagebot_cycles_total", trigger="schedule", outcome="failed") == 1
    assert sample(text, "imagebot_last_success_timestamp_seconds", environment="dev") > 0
    assert sample(text, "imagebot_last_success_timestamp_seconds", environment="qa") == 0


def test_registry_errors_are_counted_by_kind(tmp_path: Path, registry: Registry) -> None:
    """A listing of a repository the registry does not hold counts as a registry.NotFound
    error, and the error still reaches the caller."""
    metrics = Metrics()
    missing = f"{registry.host}/acme/nothing-here"

    async def main() -> str:
        async with Runtime(
            settings=RegistriesSettings(),
            cache_dir=tmp_path / "c",
            wrap_registry=metrics.metered,
        ) as rt:
            try:
                await rt.registry.list_tags(missing)
            except NotFound as exc:
                return type(exc).__name__
            return "no error"

    assert anyio.run(main) == "NotFound"
    text = metrics.exposition().decode()
    assert sample(text, "imagebot_errors_total", kind="registry.NotFound") == 1
    assert sample(text, "imagebot_tags_seen", repository=missing) == 0
