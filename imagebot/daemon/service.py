"""The service ``imagebot serve`` runs: one anyio loop with one named task per job.

Jobs: the HTTP server (uvicorn, on a socket bound before anything else starts), the
policy watcher, one schedule per environment, the dispatcher that runs cycles, the Lease
elector when asked for, and the signal handler. State lives where it belongs (git for what
runs, the registry cache for tags); what this object holds in memory is only what
``/readyz`` and ``/metrics`` report.

Shutdown (SIGTERM or SIGINT): no new cycle starts; cycles in flight are cancelled, which
takes effect at their next await — a commit-and-push runs in a worker thread that
cancellation waits for, so a cycle either completes its push or stops before writing; the
Lease is released; the process exits 0 — or, if the grace period runs out first, at once with 1.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from imagebot import livefile, logs
from imagebot.core.policy import Schedule
from imagebot.daemon.app import server_config
from imagebot.daemon.events import Decisions
from imagebot.daemon.leader import Elector, LeaseClient, LeaseSettings
from imagebot.daemon.listener import Server, bind
from imagebot.daemon.metrics import Metrics
from imagebot.daemon.policies import PolicyDirectory, PolicyRepository
from imagebot.daemon.runtime import Runtime
from imagebot.daemon.scheduler import Dispatcher, Timer, WallTimer, run_schedule
from imagebot.daemon.shards import Shards
from imagebot.daemon.status_api import Access
from imagebot.daemon.webhooks import Push
from imagebot.policysource import GitPolicies
from imagebot.publisher import Publishers
from imagebot.registry.settings import RegistriesSettings

log = logs.get_logger("imagebot.daemon")

Secret = str | Callable[[], str | None] | None


def _current(secret: Secret) -> str | None:
    return secret() if callable(secret) else secret


@dataclass(frozen=True)
class ServeOptions:
    policies: Path | GitPolicies
    cache_dir: Path
    settings: RegistriesSettings | Callable[[], RegistriesSettings] = field(
        default_factory=RegistriesSettings
    )
    """A callable is asked before every cycle (registries.yaml, re-read when it changes)."""
    listen: str = "127.0.0.1:8080"
    webhook_secret: Secret = None
    """A callable is asked on every webhook (a secret file, re-read when it changes)."""
    url_token: Secret = None
    """The ``?token=`` of senders that cannot send headers (Docker Hub, Quay); None: off."""
    http_deadline: float = 10.0
    """Seconds a client has to send a request's headers, and a webhook's body."""
    lease: LeaseSettings | None = None
    """Leader election through this Lease; None runs cycles unconditionally."""
    shards: int = 0
    """With ``lease``: split environments into this many shards, one Lease each (0: one
    leader runs them all)."""
    grace: float = 25.0
    """Seconds from SIGTERM to exit, in-flight cycles included."""
    max_cycles: int = 4
    """Cycles running at once (each over one or more environments)."""
    reload_interval: float = 5.0
    """Seconds between looks at the policy directory."""
    debounce: float = 0.2
    """Seconds a webhook waits for more pushes before its cycle starts."""
    git_timeout: float = 300.0
    """Longest a git fetch or push may take."""
    status_page: bool = True
    """Serve ``/`` and ``/api/v1/status``."""
    status_access: Access | None = None
    """Who may read them (None: anyone who reaches the port)."""


class Service:
    def __init__(
        self,
        options: ServeOptions,
        *,
        timer: Timer | None = None,
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        hard_exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.options = options
        self.timer = timer or WallTimer()
        self.metrics = metrics or Metrics()
        self.policies = (
            PolicyRepository(options.policies, options.cache_dir, timeout=options.git_timeout)
            if isinstance(options.policies, GitPolicies)
            else PolicyDirectory(options.policies)
        )
        self._policy_wait: anyio.CancelScope | None = None  # cancelled: look now
        self.decisions = Decisions()
        self.last = self.decisions.last
        self._monotonic = monotonic
        self._hard_exit = hard_exit
        self._elector: Elector | None = None
        self._shards: Shards | None = None
        self._runtime: Runtime | None = None
        self._cycle_scopes: dict[anyio.CancelScope, list[str]] = {}
        self._schedules: dict[str, tuple[Schedule, anyio.CancelScope]] = {}
        self._debounced: set[str] = set()
        self._debouncing = False
        self._tg: TaskGroup | None = None
        self.dispatcher = Dispatcher(
            self._run_cycle, max_cycles=options.max_cycles, may_run=lambda: self.leading
        )
        self.stopping = anyio.Event()
        self.bound: tuple[str, int] | None = None

    # ------------------------------------------------------------------ state

    @property
    def leading(self) -> bool:
        return self._elector is None or self._elector.leading

    webhook_secret = property(lambda self: _current(self.options.webhook_secret))
    url_token = property(lambda self: _current(self.options.url_token))

    def owns(self, environment: str) -> bool:
        """Whether this replica may run ``environment`` now (its shard, or the leader)."""
        return self.leading and (self._shards is None or self._shards.owns(environment))

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        state = self.policies.state
        envs = {
            name: (
                {"last_cycle": "ok" if last.ok else "failed", "at": last.at.isoformat()}
                | ({"error": last.error} if last.error else {})
                if (last := self.last.get(name))
                else {"last_cycle": "none"}
            )
            for name in state.environments
        }
        ran = [self.last[n] for n in state.environments if n in self.last]
        all_failed = (
            bool(ran) and len(ran) == len(state.environments) and not any(r.ok for r in ran)
        )
        ready = state.loaded and not all_failed and not self.stopping.is_set()
        detail = {
            "ready": ready,
            "leader": self.leading,
            "environments": envs,
            "policy_problems": list(state.problems),
            "kept_last_good": list(state.kept),
            "config_problems": livefile.problems(),
        }
        if self._shards:
            detail["shards"] = {"count": self._shards.count, "owned": self._shards.owned}
        return ready, detail

    def refresh_gauges(self) -> None:
        self.metrics.leader.set(1 if self.leading else 0)
        self.metrics.shards_owned.set(len(self._shards.owned) if self._shards else 0)
        self.metrics.environments.set(len(self.policies.state.environments))
        self.metrics.policy_problems.set(len(self.policies.state.problems))
        self.metrics.show_decisions({n: (c.ok, c.at, c.images) for n, c in self.last.items()})

    def watchers(self) -> dict[str, set[str]]:
        """Each watched repository with the environments whose policies watch it."""
        found: dict[str, set[str]] = {}
        for name, loaded in self.policies.state.environments.items():
            for image in loaded.policy.images:
                found.setdefault(image.normalized_repository, set()).add(name)
        return found

    # ------------------------------------------------------------------ triggers

    def on_pushes(self, pushes: Iterable[Push], *, sender: str) -> tuple[list[str], list[str]]:
        """Queue a (debounced) cycle of every environment watching a pushed repository; the
        environments and the watched repositories. Repositories no policy watches are
        ignored: a flood of them costs nothing that stays."""
        watchers = self.watchers()
        watched = {p.repository: watchers[p.repository] for p in pushes if p.repository in watchers}
        # A replica triggers only the environments it owns; see docs/daemon.md.
        envs = sorted(e for e in set().union(*watched.values()) if self.owns(e))
        if self._runtime is not None:
            for repository in watched:
                self._runtime.pushed(repository)
        if envs:
            self._debounced.update(envs)
            if not self._debouncing and self._tg is not None:
                self._debouncing = True
                self._tg.start_soon(self._flush_debounced, name="webhook-debounce")
        return envs, sorted(watched)

    async def _flush_debounced(self) -> None:
        try:
            if self.options.debounce > 0:
                await self.timer.sleep(self.options.debounce)
        finally:
            self._debouncing = False
        envs, self._debounced = self._debounced, set()
        self.dispatcher.request(envs, "webhook")

    def _reschedule(self) -> None:
        """One schedule task per environment, restarted when its schedule changes."""
        assert self._tg is not None
        wanted = {n: p.policy.schedule for n, p in self.policies.state.environments.items()}
        for name, (schedule, scope) in list(self._schedules.items()):
            if wanted.get(name) != schedule:
                scope.cancel()
                del self._schedules[name]
        for name, schedule in wanted.items():
            if name not in self._schedules:
                scope = anyio.CancelScope()
                self._schedules[name] = (schedule, scope)
                self._tg.start_soon(
                    self._schedule_task, name, schedule, scope, name=f"schedule:{name}"
                )

    async def _schedule_task(self, name: str, schedule: Schedule, scope: anyio.CancelScope) -> None:
        with scope:
            await run_schedule(
                name,
                schedule,
                timer=self.timer,
                fire=lambda env: self.dispatcher.request([env], "schedule"),
                planned=self.decisions.next_due.__setitem__,
            )

    def look_at_policies(self) -> None:
        """Look for policy changes now (a forge reported a push), not at the next interval."""
        self._policy_wait = self._policy_wait or anyio.CancelScope()
        self._policy_wait.cancel()

    async def _watch_policies(self) -> None:
        while True:
            self._policy_wait = self._policy_wait or anyio.CancelScope()
            with self._policy_wait:
                await self.timer.sleep(self.options.reload_interval)
            self._policy_wait = None
            if not await anyio.to_thread.run_sync(self.policies.changed):
                continue
            before = self.policies.state.environments
            state = self.policies.load()
            removed = set(before) - set(state.environments)
            self.dispatcher.forget(removed)
            for name in removed:
                self.decisions.forget(name)
            changed = [n for n, p in state.environments.items() if before.get(n) != p]
            self._reschedule()
            if changed:
                self.dispatcher.request(changed, "reload")

    # ------------------------------------------------------------------ cycles

    async def _run_cycle(self, batch: list[str], trigger: str) -> None:
        assert self._runtime is not None
        if self.stopping.is_set() or not self.leading:
            return  # queued behind the concurrency limit when the service stopped writing
        batch = [n for n in batch if n in self.policies.state.environments and self.owns(n)]
        policies = [self.policies.state.environments[n] for n in batch]
        if not policies:
            return
        cycle_id = uuid.uuid4().hex[:12]
        with (
            structlog.contextvars.bound_contextvars(cycle_id=cycle_id, trigger=trigger),
            anyio.CancelScope() as scope,
        ):
            self._cycle_scopes[scope] = batch
            try:
                log.info("cycle_started", environments=batch)
                start = self._monotonic()
                try:
                    result = await self._runtime.run_cycle(
                        policies,
                        publish=True,
                        known_tags=trigger == "webhook",
                        git_timeout=self.options.git_timeout,
                        # Every environment, so a promoted one finds its upstream even when
                        # the upstream is not in this batch.
                        catalog=tuple(self.policies.state.environments.values()),
                    )
                except Exception as exc:  # one bad cycle never stops the daemon
                    self._crashed(batch, exc)
                    return
                seconds = self._monotonic() - start
                now = self.timer.now()
                self.metrics.record_cycle(result, trigger=trigger, seconds=seconds, now=now)
                async with Publishers() as publishers:
                    await self.metrics.read_open_pull_requests(policies, publishers)
                if self.policies.fetched_with(self._runtime.repo_urls(policies)):
                    self.look_at_policies()  # that repository was just fetched: so are they
                for env in result.environments:
                    error = env.error or "; ".join(env.plan.problems) or None
                    self.decisions.record(env.plan.environment, env.ok, now, error, env, seconds)
                log.info(
                    "cycle_finished",
                    ok=result.ok,
                    seconds=round(seconds, 3),
                    commits={e.plan.environment: e.commit for e in result.environments if e.commit},
                )
            finally:
                self._cycle_scopes.pop(scope, None)
        if scope.cancelled_caught:
            log.warning("cycle_abandoned", cycle_id=cycle_id, trigger=trigger)

    def _crashed(self, batch: list[str], exc: Exception) -> None:
        """A bug, not a registry or git failure (those are results): report it, keep serving."""
        log.error("cycle_crashed", environments=batch, error=repr(exc), exc_info=exc)
        self.metrics.errors.labels("internal").inc()
        now = self.timer.now()
        for name in batch:
            self.decisions.crashed(name, now, f"internal error: {exc!r}")

    def _cancel_cycles(self, environments: Iterable[str] | None = None) -> None:
        """Cancel the cycles running any of ``environments`` (default: every cycle)."""
        for scope, batch in list(self._cycle_scopes.items()):
            if environments is None or set(batch) & set(environments):
                scope.cancel()

    def _leadership_started(self) -> None:
        self.dispatcher.request(self.policies.state.environments, "startup")

    def _leadership_stopped(self) -> None:
        # Stop writing now: the Lease may pass to another replica once it expires.
        self.dispatcher.forget(self.policies.state.environments)
        self._cancel_cycles()

    # ------------------------------------------------------------------ running

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("shutdown_requested")
            self.stopping.set()

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal", signal=signal.Signals(signum).name)
                self.stop()
                return

    async def run(self, *, handle_signals: bool = True) -> int:
        """Serve until stopped; the exit code."""
        sock = bind(self.options.listen)
        self.bound = sock.getsockname()[:2]
        http_stop = anyio.Event()
        config = server_config(self, deadline=self.options.http_deadline)
        server = Server(config, http_stop)
        state = self.policies.load()
        log.info(
            "serving",
            listen=f"{self.bound[0]}:{self.bound[1]}" if self.bound else self.options.listen,
            environments=sorted(state.environments),
            leader_election=self.options.lease is not None,
            webhooks=self.webhook_secret is not None,
        )
        lease_client = LeaseClient(self.options.lease) if self.options.lease else None
        if lease_client is not None and self.options.shards:
            self._shards = Shards(
                lease_client,
                self.options.shards,
                environments=lambda: self.policies.state.environments,
                dispatcher=self.dispatcher,
                cancel=self._cancel_cycles,
                monotonic=self._monotonic,
            )
        elif lease_client is not None:
            self._elector = Elector(lease_client, monotonic=self._monotonic)
        try:
            async with Runtime(
                settings=self.options.settings,
                cache_dir=self.options.cache_dir,
                clock=self.timer.now,
                event_hooks={"response": [self.metrics.on_response]},
                wrap_registry=self.metrics.metered,
            ) as runtime:
                self._runtime = runtime
                async with anyio.create_task_group() as tg:
                    tg.start_soon(server.serve, [sock], name="http")
                    if handle_signals:
                        tg.start_soon(self._signals, name="signals")
                    jobs = anyio.CancelScope()
                    tg.start_soon(self._jobs, jobs, name="jobs")
                    cycles_done = anyio.Event()
                    tg.start_soon(self._dispatch, cycles_done, name="dispatcher")
                    if self._elector is None and self._shards is None:
                        self.dispatcher.request(state.environments, "startup")
                    await self.stopping.wait()
                    # Stop: nothing new, cycles in flight cancelled (writes in progress end).
                    self.dispatcher.stop()
                    jobs.cancel()
                    self._cancel_cycles()
                    with anyio.move_on_after(self.options.grace) as grace:
                        await cycles_done.wait()
                        if self._elector is not None:
                            await self._elector.release()
                        if self._shards is not None:
                            await self._shards.release()
                    if grace.cancelled_caught:
                        # A write still running in a worker thread cannot be interrupted
                        # from here (that is what keeps it whole), and the loop would wait
                        # for it: leave now. A git push already under way completes or fails
                        # in its own process; the remote never sees half of it.
                        log.error("shutdown_grace_expired", grace=self.options.grace)
                        self._hard_exit(1)
                    http_stop.set()
        finally:
            sock.close()  # uvicorn closes it once serving; not when stopped before that
            if lease_client is not None:
                await lease_client.aclose()
            self._runtime = None
        log.info("stopped", clean=True)
        return 0

    async def _dispatch(self, done: anyio.Event) -> None:
        try:
            await self.dispatcher.serve()
        finally:
            done.set()

    async def _jobs(self, scope: anyio.CancelScope) -> None:
        with scope:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._reschedule()
                tg.start_soon(self._watch_policies, name="policy-watch")
                if (shards := self._shards) is not None:
                    tg.start_soon(lambda: shards.run(sleep=anyio.sleep), name="shards")
                if self._elector is not None:
                    elector = self._elector
                    tg.start_soon(
                        lambda: elector.run(
                            started=self._leadership_started, stopped=self._leadership_stopped
                        ),
                        name="lease",
                    )
