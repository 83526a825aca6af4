"""One cycle: read env repos → scan registries → plan → edit → publish.

All decisions are made by pure functions in ``imagebot.core``; this module only moves data
between them and the outside world (git, registries, the clock). Reading an environment's
files is :mod:`imagebot.git.workspace`; asking the registries is :mod:`imagebot.registry.scan`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread

from imagebot import config, logs, progress
from imagebot.cache import Cache
from imagebot.clock import Clock, utc_now
from imagebot.core.envgraph import order_environments
from imagebot.core.plan import EnvironmentPlan, ImageScan, plan_environment
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.gates import CommitStatuses
from imagebot.core.promotion.history import HistoryCommit
from imagebot.core.promotion.record import ImageRecord, PullRequestRecord, records
from imagebot.core.promotion.views import Prepared, annotate, prepare
from imagebot.core.selection import compile_rule
from imagebot.core.selectmemo import SelectionMemo
from imagebot.errors import ForgeError, GitError
from imagebot.forge.statuses import StatusSource, forge_statuses, read_statuses
from imagebot.git.history import read_history
from imagebot.git.repo import DEFAULT_TIMEOUT as DEFAULT_GIT_TIMEOUT
from imagebot.git.repo import EnvRepo
from imagebot.git.workspace import Workspace, read_workspace, repo_cache_dir
from imagebot.publisher import Publishers
from imagebot.registry.scan import Registry, resolve_digests, scan_repositories
from imagebot.registry.trust import Store, verify_gate

log = logs.get_logger("imagebot.engine")


@dataclass(frozen=True)
class EnvironmentResult:
    plan: EnvironmentPlan
    commit: str | None = None
    error: str | None = None
    publication: str | None = None  # what the publisher did or would do, e.g. a PR opened
    pull_request: PullRequestRecord | None = None  # the environment's, as the forge shows it
    #: the decision record of each image: what runs, what comes next and what it waits for
    images: tuple[ImageRecord, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.plan.problems


@dataclass(frozen=True)
class CycleResult:
    environments: tuple[EnvironmentResult, ...]
    problems: tuple[str, ...]  # policy problems: environments that could not even start

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.environments)


async def run_cycle(
    policies: Sequence[LoadedPolicy],
    *,
    registry: Registry,
    repos_dir: Path,
    publish: bool,
    clock: Clock = utc_now,
    problems: Sequence[str] = (),
    push_attempts: int = 3,
    git_timeout: float = DEFAULT_GIT_TIMEOUT,
    publishers: Publishers | None = None,
    catalog: Sequence[LoadedPolicy] = (),
    statuses: StatusSource | None = None,
    memo: SelectionMemo | None = None,
    image_digests: bool = True,
    cache: Cache | None = None,
) -> CycleResult:
    """Run one cycle over ``policies``; with ``publish`` publish each environment the way
    its policy says (``publishers`` builds the publishers; default: the process's tokens).

    Each environment is planned and published as soon as the repositories it needs are
    scanned, so one slow registry holds up only the environments that use it. A promoted
    environment also waits for its upstream, so a version can travel dev → staging in one
    cycle. ``catalog`` holds every known environment (default: ``policies``) so that a
    promoted environment finds its upstream even when only it was asked for; ``statuses``
    answers the checks gate (default: the upstream's forge, from its ``publish.forge``).
    ``memo`` carries decisions from the last cycle (a long-running process passes the same one each
    time). Without ``image_digests`` a moving tag's digest is fetched only when the file
    pins it, since nothing else shows it (plain-text ``plan``). ``cache`` keeps what was
    read of each environment's history, so the next cycle reads only the commits since.
    """
    memo = memo or SelectionMemo()
    memo.new_cycle()
    async with contextlib.AsyncExitStack() as stack:
        if publishers is None:
            publishers = await stack.enter_async_context(Publishers())
        publishers.start_cycle()
        cycle = _Cycle(registry, repos_dir, publish, clock, push_attempts, git_timeout,
                       publishers, memo, image_digests, cache, Store(cache))  # fmt: skip
        return await _run_cycle(
            policies, cycle, problems=problems, catalog=catalog, statuses=statuses
        )


@dataclass(frozen=True)
class _Cycle:
    """What every environment of one cycle is run with (see :func:`run_cycle`)."""

    registry: Registry
    repos_dir: Path
    publish: bool
    clock: Clock
    push_attempts: int
    git_timeout: float
    publishers: Publishers
    memo: SelectionMemo
    image_digests: bool
    cache: Cache | None
    verified: Store


async def _run_cycle(
    policies: Sequence[LoadedPolicy],
    cycle: _Cycle,
    *,
    problems: Sequence[str],
    catalog: Sequence[LoadedPolicy],
    statuses: StatusSource | None,
) -> CycleResult:
    repos_dir, git_timeout = cycle.repos_dir, cycle.git_timeout
    policies, graph_problems = order_environments(policies, catalog)
    problems = (*problems, *(p for p in graph_problems if p not in problems))
    known = {p.name: p for p in (*catalog, *policies)}
    histories: dict[str, list[HistoryCommit]] = {}
    prepared_for: dict[str, Prepared] = {}
    workspaces: dict[str, Workspace | str] = {}
    fetched: set[tuple[str, str]] = set()  # (clone, branch): environments share one fetch
    for loaded in policies:
        try:
            workspaces[loaded.name] = await anyio.to_thread.run_sync(
                read_workspace, loaded, repos_dir, git_timeout, fetched
            )
        except GitError as exc:
            log.error("repo_unavailable", environment=loaded.name, error=str(exc))
            workspaces[loaded.name] = f"{loaded.name}: {exc}"
    governed = [
        g for ws in workspaces.values() if isinstance(ws, Workspace) for g in ws.governance.groups
    ]
    wanted = {g.repository for g in governed}
    builds = {g.repository for g in governed if compile_rule(g.rule.rule()).needs_created}
    scans: dict[str, ImageScan] = {}
    scanned = {repository: anyio.Event() for repository in wanted}
    finished = {loaded.name: anyio.Event() for loaded in policies}
    results: dict[str, EnvironmentResult] = {}

    async def scan(repository: str) -> None:
        scans.update(await scan_repositories(cycle.registry, [repository], with_created=builds))
        scanned[repository].set()
        listed.advance()

    async def environment(position: int, loaded: LoadedPolicy) -> None:
        try:
            ws = workspaces[loaded.name]
            if isinstance(ws, str):
                results[loaded.name] = _failed(loaded, ws)
                return
            for g in ws.governance.groups:
                await scanned[g.repository].wait()
            # Environments sharing a clone publish in policy order, each from the last's head;
            # a promoted environment starts once its upstream has published.
            promote = loaded.policy.promote
            for earlier in policies[:position]:
                other = workspaces[earlier.name]
                shared = isinstance(other, Workspace) and other.repo.path == ws.repo.path
                if shared or (promote is not None and earlier.name == promote.from_):
                    await finished[earlier.name].wait()
            try:
                prepared = await _prepare(
                    loaded, ws, known, histories, scans, repos_dir, cycle.clock(), git_timeout,
                    results=results, source=statuses, publishers=cycle.publishers,
                    cache=cycle.cache,
                )  # fmt: skip
                prepared_for[loaded.name] = prepared
            except GitError as exc:
                log.error("history_unavailable", environment=loaded.name, error=str(exc))
                results[loaded.name] = _failed(loaded, str(exc))
                return
            result = await _run_environment(loaded, ws, cycle, prepared)
            if result.commit:
                histories.pop(loaded.name, None)  # downstream environments read the new commit
            results[loaded.name] = result
            # The last environment of a clone pushes what all of them committed (once).
            sharing = [
                p
                for p in policies
                if isinstance(other := workspaces[p.name], Workspace)
                and other.repo.path == ws.repo.path
            ]
            if sharing[-1] is loaded:
                await _finish_publishing(
                    results, sharing, cycle, clone=str(ws.repo.path), scans=scans,
                    prepared_for=prepared_for,
                )  # fmt: skip
        finally:
            finished[loaded.name].set()
            planned.advance()

    listed = progress.Counter("repositories listed", len(wanted))
    planned = progress.Counter("environments planned", len(policies))
    try:
        async with anyio.create_task_group() as tg:
            for n, repository in enumerate(sorted(wanted), 1):
                tg.start_soon(scan, repository)
                if n % 50 == 0:  # a thousand first steps at once held the loop (status page)
                    await anyio.lowlevel.checkpoint()
            for position, loaded in enumerate(policies):
                tg.start_soon(environment, position, loaded)
    finally:
        listed.close()
        planned.close()
    # Nothing should be left to push; this makes sure.
    await _finish_publishing(
        results, policies, cycle, clone=None, scans=scans, prepared_for=prepared_for
    )
    for env, prepared in prepared_for.items():  # the record, once everything is published
        r = results[env]
        found = records(known[env], r.plan, prepared, commit=r.commit,
                        pull_request=r.pull_request, error=r.error)  # fmt: skip
        results[env] = replace(r, images=found)
    return CycleResult(
        environments=tuple(results[loaded.name] for loaded in policies),
        problems=tuple(problems),
    )


async def _prepare(
    loaded: LoadedPolicy,
    ws: Workspace,
    known: Mapping[str, LoadedPolicy],
    histories: dict[str, list[HistoryCommit]],
    scans: Mapping[str, ImageScan],
    repos_dir: Path,
    now: datetime,
    git_timeout: float,
    *,
    results: Mapping[str, EnvironmentResult],
    source: StatusSource | None,
    publishers: Publishers,
    cache: Cache | None,
) -> Prepared:
    """Read this environment's history (for holds) and its upstream's (for candidates),
    and the forge's commit statuses when the checks gate needs them."""

    def history_of(env: LoadedPolicy, repo: EnvRepo | None) -> list[HistoryCommit]:
        if env.name not in histories:
            if repo is None:
                url = config.resolve_repo_url(env.policy.repo.url, env.source)
                clone = repo_cache_dir(repos_dir, url)
                repo = EnvRepo(url, env.policy.repo.branch, clone, timeout=git_timeout)
                done = results.get(env.name)
                if done is not None and done.commit is not None:
                    # Committed this cycle: in commit mode the push may still wait for the
                    # clone's last environment, so read up to the commit itself.
                    repo.fetched = done.commit
                else:
                    repo.fetch()
            histories[env.name] = read_history(env, repo, cache)
        return histories[env.name]

    promote = loaded.policy.promote
    upstream = known.get(promote.from_) if promote else None

    def read() -> tuple[list[HistoryCommit], list[HistoryCommit] | None]:
        own = history_of(loaded, ws.repo)
        return own, history_of(upstream, None) if upstream else None

    own, upstream_history = await anyio.to_thread.run_sync(read)
    statuses: CommitStatuses | None = None
    if promote and promote.checks and upstream and upstream_history:
        if source is None:
            try:
                source = forge_statuses(publishers.forge_for(upstream))
            except ForgeError as exc:  # no token, say: every status read fails with this
                source = forge_statuses(exc)
        if source is not None:
            statuses = await read_statuses(loaded, upstream, upstream_history, source)
    return await anyio.to_thread.run_sync(
        lambda: prepare(
            loaded,
            governance=ws.governance,
            history=own,
            upstream=upstream,
            upstream_history=upstream_history,
            scans=scans,
            now=now,
            statuses=statuses,
        )
    )


async def _finish_publishing(
    results: dict[str, EnvironmentResult],
    policies: Sequence[LoadedPolicy],
    cycle: _Cycle,
    *,
    clone: str | None,
    scans: dict[str, ImageScan],
    prepared_for: Mapping[str, Prepared],
) -> None:
    """Make the pushes that waited for the last environment of a clone (once per repo, see
    publisher.PendingPushes) and update ``results``; the publishers publish again, read and
    planned anew, an environment whose push lost a race (``Publishers.settle``)."""
    known = {loaded.name: loaded for loaded in policies}

    async def again(env: str) -> None:
        try:
            ws = await anyio.to_thread.run_sync(
                read_workspace, known[env], cycle.repos_dir, cycle.git_timeout
            )
        except GitError as err:
            results[env] = replace(results[env], commit=None, error=f"{env}: {err}")
            return
        prepared = prepared_for.get(env) or Prepared(scans=dict(scans), views={}, runs={})
        results[env] = await _run_environment(known[env], ws, cycle, prepared)

    settled = await cycle.publishers.settle(clone, attempts=cycle.push_attempts, again=again)
    for env, note in settled.notes.items():
        results[env] = replace(results[env], publication=note)
    for env, error in settled.failed.items():
        results[env] = replace(results[env], commit=None, error=f"{env}: {error}")


async def _run_environment(
    loaded: LoadedPolicy, ws: Workspace, cycle: _Cycle, prepared: Prepared
) -> EnvironmentResult:
    registry, clock, env = cycle.registry, cycle.clock, loaded.name
    bound = log.bind(environment=env)
    try:
        publisher = cycle.publishers.for_policy(loaded)
    except ForgeError as exc:
        bound.error("publish_failed", error=str(exc))
        return _failed(loaded, f"{env}: {exc}")
    # Planning is CPU work (selection over thousands of tags): off the event loop, so a
    # daemon's health checks and webhooks are answered meanwhile.
    plan = await _planned(loaded, ws, cycle, prepared)
    for problem in plan.problems:
        bound.warning("problem", detail=problem)
    for change in plan.changes:
        bound.info(
            "change_planned",
            image=change.image,
            file=change.file,
            old=change.old,
            new=change.new,
            reason=change.reason,
        )
    try:
        if not cycle.publish:
            preview = await publisher.preview(ws.repo, plan)
            return EnvironmentResult(
                plan=plan, publication=preview.note, pull_request=preview.pull_request
            )
        # Shielded (as is the push in Publishers.settle): a cancelled cycle — daemon
        # shutdown, lost leadership — stops before a publisher's writes or after them, never
        # between.
        await anyio.lowlevel.checkpoint_if_cancelled()
        with anyio.CancelScope(shield=True):
            done = await publisher.publish(ws.repo, plan, when=clock(), images=registry)
    except (ForgeError, GitError) as exc:
        bound.error("publish_failed", error=str(exc))
        return EnvironmentResult(plan=plan, error=f"{env}: {exc}")
    if done.commit is not None:
        bound.info("committed", commit=done.commit, changes=len(plan.changes))
    return EnvironmentResult(
        plan=plan, commit=done.commit, publication=done.note, pull_request=done.pull_request
    )


def _failed(loaded: LoadedPolicy, error: str) -> EnvironmentResult:
    return EnvironmentResult(EnvironmentPlan(loaded.name, loaded.source), error=error)


async def _planned(
    loaded: LoadedPolicy, ws: Workspace, cycle: _Cycle, prepared: Prepared
) -> EnvironmentPlan:
    """Plan; fetch the digests the plan asks for and plan again; then the verify gate."""

    async def plan(p: Prepared) -> EnvironmentPlan:
        args = (loaded, ws, p.scans, cycle.clock, p, cycle.memo)
        made = await anyio.to_thread.run_sync(_plan, *args)
        extra = made.trailer_digests if cycle.image_digests else frozenset()
        if await resolve_digests(cycle.registry, made.digests_needed | extra, p.scans):
            # The memo answers again for every image whose selection read only tag names.
            made = await anyio.to_thread.run_sync(_plan, *args)
        return made

    return await verify_gate(loaded, prepared, plan, registry=cycle.registry, store=cycle.verified)


def _plan(
    loaded: LoadedPolicy,
    ws: Workspace,
    scans: Mapping[str, ImageScan],
    clock: Clock,
    prepared: Prepared,
    memo: SelectionMemo,
) -> EnvironmentPlan:
    plan = plan_environment(
        loaded.policy,
        source=loaded.source,
        files=ws.files,
        targets=ws.targets,
        scans=scans,
        now=clock(),
        problems=ws.problems,
        lines=loaded.lines,
        governance=ws.governance,
        memo=memo,
    )
    return annotate(plan, prepared)
