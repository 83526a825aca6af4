"""What ``/metrics`` exposes, in one registry of the service's own (not prometheus-client's
global one, so two services in one test process never share counters)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from imagebot import logs
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.record import ImageRecord
from imagebot.engine import CycleResult
from imagebot.errors import ForgeError, RegistryError
from imagebot.publisher import Publishers
from imagebot.registry.manifests import ImageInfo
from imagebot.registry.scan import Registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

log = logs.get_logger("imagebot.daemon.metrics")


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        counter, gauge = partial(Counter, registry=r), partial(Gauge, registry=r)
        self.cycles = counter(
            "imagebot_cycles", "Cycles run, by trigger and outcome", ["trigger", "outcome"]
        )
        self.cycle_seconds = Histogram(
            "imagebot_cycle_duration_seconds",
            "Wall time of one cycle",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.registry_requests = counter(
            "imagebot_registry_requests",
            "HTTP responses from registries and their token endpoints",
            ["registry", "status"],
        )
        self.rate_limited = counter(
            "imagebot_registry_rate_limit_waits",
            "HTTP 429 answers (each one a wait, or a fail-fast when the wait is too long)",
            ["registry"],
        )
        self.tags_seen = gauge("imagebot_tags_seen", "Tags listed in the last scan", ["repository"])
        self.changes_planned = counter(
            "imagebot_changes_planned", "Image changes planned", ["environment"]
        )
        self.changes_published = counter(
            "imagebot_changes_published",
            "Image changes pushed to the environment repo",
            ["environment"],
        )
        self.errors = counter("imagebot_errors", "Errors by kind", ["kind"])
        self.last_success = gauge(
            "imagebot_last_success_timestamp_seconds",
            "When an environment's cycle last went through without error",
            ["environment"],
        )
        self.policy_problems = gauge(
            "imagebot_policy_problems",
            "Problems in the policy directory as of the last load (bad files keep their last"
            " good version)",
        )
        self.environments = gauge("imagebot_environments", "Environments loaded")
        self.webhooks = counter(
            "imagebot_webhooks",
            "Webhook requests by sender and outcome: accepted (a cycle follows), ignored"
            " (pulls, unwatched repositories), refused (authentication, size, payload, not"
            " the leader)",
            ["sender", "outcome"],
        )
        self.open_pull_requests = gauge(
            "imagebot_open_pull_requests",
            "Pull requests imagebot has open, per environment in pull-request mode, as the forge"
            " answered after the environment's last cycle",
            ["environment"],
        )
        self.waiting = gauge(
            "imagebot_waiting",
            "1 for an image whose next version waits for a gate, per the last cycle",
            ["environment", "image", "gate"],
        )
        self.held = gauge(
            "imagebot_held",
            "Holds on an image (rolled back from, or imagebot hold), per the last cycle",
            ["environment", "image"],
        )
        self.last_cycle = gauge(
            "imagebot_last_cycle_timestamp_seconds",
            "When an environment's last cycle finished",
            ["environment"],
        )
        self.last_cycle_success = gauge(
            "imagebot_last_cycle_success",
            "1 when an environment's last cycle went through without error",
            ["environment"],
        )
        self.leader = gauge(
            "imagebot_leader", "1 while this replica may run cycles (always 1 without election)"
        )
        self.shards_owned = gauge(
            "imagebot_shards_owned", "Shards this replica owns (serve --shards)"
        )

    def show_decisions(
        self, last: Mapping[str, tuple[bool, datetime, Sequence[ImageRecord]]]
    ) -> None:
        """Set the decision gauges from each environment's last records (what is gone goes)."""
        for gauge in (self.waiting, self.held, self.last_cycle, self.last_cycle_success):
            gauge.clear()
        for env, (ok, at, images) in last.items():
            self.last_cycle.labels(env).set(at.timestamp())
            self.last_cycle_success.labels(env).set(1 if ok else 0)
            for r in images:
                if r.waiting is not None:
                    self.waiting.labels(env, r.image, r.waiting.gate).set(1)
                if r.holds:
                    self.held.labels(env, r.image).set(len(r.holds))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook on every registry client."""
        host = response.request.url.host
        if response.request.url.port:
            host = f"{host}:{response.request.url.port}"
        self.registry_requests.labels(host, str(response.status_code)).inc()
        if response.status_code == 429:
            self.rate_limited.labels(host).inc()

    def record_cycle(
        self, result: CycleResult, *, trigger: str, seconds: float, now: datetime
    ) -> None:
        self.cycle_seconds.observe(seconds)
        self.cycles.labels(trigger, "ok" if result.ok else "failed").inc()
        if result.problems:
            self.errors.labels("policy").inc(len(result.problems))
        for env in result.environments:
            name = env.plan.environment
            self.changes_planned.labels(name).inc(len(env.plan.changes))
            if env.commit:
                self.changes_published.labels(name).inc(len(env.plan.changes))
            if env.plan.problems:
                self.errors.labels("plan").inc(len(env.plan.problems))
            if env.error:
                self.errors.labels("git").inc()
            if env.ok:
                self.last_success.labels(name).set(now.timestamp())

    async def read_open_pull_requests(
        self, policies: Sequence[LoadedPolicy], publishers: Publishers
    ) -> None:
        """Ask each pull-request environment's forge whether imagebot's pull request is open.

        Read back from the forge, where that state lives, rather than counted from what a
        cycle did: a human may merge or close a pull request between cycles. A forge that
        cannot answer leaves the last value and is logged."""
        for loaded in policies:
            spec = loaded.policy.publish
            if spec.mode != "pull-request":
                continue
            try:
                forge = publishers.forge_for(loaded)
                if forge is None:
                    continue
                pr = await forge.find_open(
                    head=spec.branch_for(loaded.name), base=loaded.policy.repo.branch
                )
            except ForgeError as exc:
                log.warning("open_pull_requests_unknown", environment=loaded.name, error=str(exc))
                continue
            self.open_pull_requests.labels(loaded.name).set(0 if pr is None else 1)

    def metered(self, registry: Registry) -> Registry:
        return _MeteredRegistry(registry, self)


class _MeteredRegistry:
    """The engine's view of the registry, counting tags seen and registry errors."""

    def __init__(self, inner: Registry, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @contextmanager
    def _counted(self) -> Iterator[None]:
        try:
            yield
        except RegistryError as exc:
            kind = type(exc).__name__  # RegistryError, AuthError, NotFound, RateLimited
            self._metrics.errors.labels(f"registry.{kind}").inc()
            raise

    async def list_tags(self, repository: str) -> list[str]:
        with self._counted():
            tags = await self._inner.list_tags(repository)
        self._metrics.tags_seen.labels(repository).set(len(tags))
        return tags

    async def digest(self, repository: str, tag: str) -> str:
        with self._counted():
            return await self._inner.digest(repository, tag)

    async def first_seen(self, repository: str) -> dict[str, datetime]:
        return await self._inner.first_seen(repository)

    async def image_info(
        self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
    ) -> ImageInfo:
        with self._counted():
            return await self._inner.image_info(repository, tag, created=created, platform=platform)

    async def fetch(self, repository: str, path: str, *, accept: str) -> bytes | None:
        return await self._inner.fetch(repository, path, accept=accept)
