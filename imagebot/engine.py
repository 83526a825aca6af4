"""One cycle: read env repos → scan registries → plan → edit → publish.

All decisions are made by pure functions in ``imagebot.core``; this module only moves data
between them and the outside world (git, registries, the clock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread

from imagebot import config, logs, promoting
from imagebot.core import rewrite
from imagebot.core.envgraph import order_environments
from imagebot.core.plan import (
    EnvironmentPlan,
    ImageScan,
    commit_message,
    in_scope,
    plan_environment,
    targets_for,
)
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion import CommitStatuses, HistoryCommit
from imagebot.core.selection import TagInfo
from imagebot.errors import EditError, GitError, RegistryError
from imagebot.gitrepo import DEFAULT_TIMEOUT as DEFAULT_GIT_TIMEOUT
from imagebot.gitrepo import EnvRepo, PushRejected, redact
from imagebot.registry.manifests import ImageInfo

log = logs.get_logger("imagebot.engine")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Registry(Protocol):
    """What the engine needs from a registry client (imagebot.registry.RegistryClient)."""

    async def list_tags(self, repository: str) -> list[str]: ...

    async def digest(self, repository: str, tag: str) -> str: ...

    async def first_seen(self, repository: str) -> dict[str, datetime]: ...

    async def image_info(
        self, repository: str, tag: str, *, created: bool = False, platform: str | None = None
    ) -> ImageInfo: ...


@dataclass(frozen=True)
class EnvironmentResult:
    plan: EnvironmentPlan
    commit: str | None = None
    error: str | None = None
    #: per image: what runs since when, what comes next and what it waits for
    images: tuple[promoting.ImageStatus, ...] = ()

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


@dataclass
class _Workspace:
    """An environment's files as read from git in this cycle."""

    repo: EnvRepo
    head: str
    files: dict[str, str]
    targets: dict[str, list[rewrite.Target]]
    problems: list[str]


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
    catalog: Sequence[LoadedPolicy] = (),
    statuses: promoting.StatusSource | None = None,
) -> CycleResult:
    """Run one cycle over ``policies``; with ``publish`` commit and push each environment.

    Each environment is planned and published as soon as the repositories it needs are
    scanned, so one slow registry holds up only the environments that use it. A promoted
    environment also waits for its upstream, so a version can travel dev → staging in one
    cycle. ``catalog`` holds every known environment (default: ``policies``) so that a
    promoted environment finds its upstream even when only it was asked for; ``statuses``
    answers the checks gate (without it, promotions with ``checks`` wait).
    """
    policies, graph_problems = order_environments(policies, catalog)
    problems = (*problems, *(p for p in graph_problems if p not in problems))
    known = {p.name: p for p in (*catalog, *policies)}
    histories: dict[str, list[HistoryCommit]] = {}
    workspaces: dict[str, _Workspace | str] = {}
    for loaded in policies:
        try:
            workspaces[loaded.name] = await anyio.to_thread.run_sync(
                _read_workspace, loaded, repos_dir, git_timeout
            )
        except GitError as exc:
            log.error("repo_unavailable", environment=loaded.name, error=str(exc))
            workspaces[loaded.name] = f"{loaded.name}: {exc}"
    wanted = {
        image.normalized_repository
        for loaded in policies
        if isinstance(ws := workspaces[loaded.name], _Workspace)
        for image in loaded.policy.images
        if any(targets_for(image, ts) for ts in ws.targets.values())
    }
    builds = {
        image.normalized_repository
        for loaded in policies
        for image in loaded.policy.images
        if image.rule().needs_created
    }
    scans: dict[str, ImageScan] = {}
    scanned = {repository: anyio.Event() for repository in wanted}
    finished = {loaded.name: anyio.Event() for loaded in policies}
    results: dict[str, EnvironmentResult] = {}

    async def scan(repository: str) -> None:
        scans.update(await scan_repositories(registry, [repository], with_created=builds))
        scanned[repository].set()

    async def environment(position: int, loaded: LoadedPolicy) -> None:
        try:
            ws = workspaces[loaded.name]
            if isinstance(ws, str):
                empty = EnvironmentPlan(environment=loaded.name, source=loaded.source)
                results[loaded.name] = EnvironmentResult(plan=empty, error=ws)
                return
            for image in loaded.policy.images:
                if image.normalized_repository in scanned:
                    await scanned[image.normalized_repository].wait()
            # Environments sharing a clone publish in policy order, each from the last's head;
            # a promoted environment starts once its upstream has published.
            promote = loaded.policy.promote
            for earlier in policies[:position]:
                other = workspaces[earlier.name]
                shared = isinstance(other, _Workspace) and other.repo.path == ws.repo.path
                if shared or (promote is not None and earlier.name == promote.from_):
                    await finished[earlier.name].wait()
            try:
                prepared = await _prepare(
                    loaded, ws, known, histories, scans, repos_dir, clock(), statuses, git_timeout
                )
            except GitError as exc:
                log.error("history_unavailable", environment=loaded.name, error=str(exc))
                empty = EnvironmentPlan(environment=loaded.name, source=loaded.source)
                results[loaded.name] = EnvironmentResult(plan=empty, error=str(exc))
                return
            result = await _run_environment(
                loaded,
                ws,
                registry=registry,
                scans=prepared.scans,
                repos_dir=repos_dir,
                publish=publish,
                clock=clock,
                push_attempts=push_attempts,
                git_timeout=git_timeout,
                prepared=prepared,
            )
            if result.commit:
                histories.pop(loaded.name, None)  # downstream environments read the new commit
            results[loaded.name] = replace(
                result,
                images=promoting.statuses_of(
                    loaded, targets=ws.targets, prepared=prepared, plan=result.plan
                ),
            )
        finally:
            finished[loaded.name].set()

    async with anyio.create_task_group() as tg:
        for repository in sorted(wanted):
            tg.start_soon(scan, repository)
        for position, loaded in enumerate(policies):
            tg.start_soon(environment, position, loaded)
    return CycleResult(
        environments=tuple(results[loaded.name] for loaded in policies),
        problems=tuple(problems),
    )


async def _prepare(
    loaded: LoadedPolicy,
    ws: _Workspace,
    known: Mapping[str, LoadedPolicy],
    histories: dict[str, list[HistoryCommit]],
    scans: Mapping[str, ImageScan],
    repos_dir: Path,
    now: datetime,
    source: promoting.StatusSource | None,
    git_timeout: float,
) -> promoting.Prepared:
    """Read this environment's history (for holds) and its upstream's (for candidates),
    and the forge's commit statuses when the checks gate needs them."""

    def history_of(env: LoadedPolicy, repo: EnvRepo | None) -> list[HistoryCommit]:
        if env.name not in histories:
            if repo is None:
                url = config.resolve_repo_url(env.policy.repo.url, env.source)
                cache = repo_cache_dir(repos_dir, url)
                repo = EnvRepo(url, env.policy.repo.branch, cache, timeout=git_timeout)
                repo.fetch()
            histories[env.name] = promoting.read_history(env, repo)
        return histories[env.name]

    promote = loaded.policy.promote
    upstream = known.get(promote.from_) if promote else None

    def read() -> tuple[list[HistoryCommit], list[HistoryCommit] | None]:
        own = history_of(loaded, ws.repo)
        return own, history_of(upstream, None) if upstream else None

    own, upstream_history = await anyio.to_thread.run_sync(read)
    statuses: CommitStatuses | None = None
    if source is not None and promote and promote.checks and upstream and upstream_history:
        statuses = await promoting.read_statuses(loaded, upstream, upstream_history, source)
    return await anyio.to_thread.run_sync(
        lambda: promoting.prepare(
            loaded,
            targets=ws.targets,
            history=own,
            upstream=upstream,
            upstream_history=upstream_history,
            scans=scans,
            now=now,
            statuses=statuses,
        )
    )


async def scan_repositories(
    registry: Registry, repositories: Sequence[str], *, with_created: Set[str] = frozenset()
) -> dict[str, ImageScan]:
    """List the tags of every repository concurrently, with when imagebot first saw each
    (for min_age) and, for repositories in ``with_created``, each image's build time (for
    newest-build). A failure is recorded in the scan, never raised."""
    scans: dict[str, ImageScan] = {}

    async def one(repository: str) -> None:
        try:
            tags = await registry.list_tags(repository)
            seen = await registry.first_seen(repository)
            infos: dict[str, ImageInfo] = {}
            if repository in with_created:
                async with anyio.create_task_group() as tg:
                    for tag in tags:
                        tg.start_soon(_image_info, registry, repository, tag, infos)
        except RegistryError as exc:
            log.error("scan_failed", repository=repository, error=str(exc))
            scans[repository] = ImageScan(error=str(exc))
            return
        log.info("tags_listed", repository=repository, count=len(tags))
        scans[repository] = ImageScan(
            tags=tuple(
                TagInfo(
                    name=t,
                    first_seen=seen.get(t),
                    created=infos[t].created if t in infos else None,
                    digest=infos[t].digest if t in infos else None,
                )
                for t in tags
            ),
            digests={t: i.digest for t, i in infos.items() if i.digest},
        )

    async with anyio.create_task_group() as tg:
        for repository in repositories:
            tg.start_soon(one, repository)
    return scans


async def _image_info(
    registry: Registry, repository: str, tag: str, out: dict[str, ImageInfo]
) -> None:
    try:
        out[tag] = await registry.image_info(repository, tag, created=True)
    except RegistryError as exc:
        # One unreadable tag is skipped by selection ("no creation time"), not fatal.
        log.warning("image_info_failed", repository=repository, tag=tag, error=str(exc))


async def _resolve_digests(
    registry: Registry, plan: EnvironmentPlan, scans: dict[str, ImageScan]
) -> bool:
    """Fetch the digest of every chosen version not yet known; True if any was added."""
    needed = plan.digests_needed
    if not needed:
        return False
    found: dict[tuple[str, str], str] = {}

    async def one(repository: str, tag: str) -> None:
        try:
            found[(repository, tag)] = await registry.digest(repository, tag)
        except RegistryError as exc:
            log.error("digest_failed", repository=repository, tag=tag, error=str(exc))

    async with anyio.create_task_group() as tg:
        for repository, tag in sorted(needed):
            tg.start_soon(one, repository, tag)
    for (repository, tag), digest in found.items():
        scan = scans[repository]
        scans[repository] = replace(scan, digests={**scan.digests, tag: digest})
    return bool(found)


async def _run_environment(
    loaded: LoadedPolicy,
    ws: _Workspace,
    *,
    registry: Registry,
    scans: dict[str, ImageScan],
    repos_dir: Path,
    publish: bool,
    clock: Clock,
    push_attempts: int,
    git_timeout: float,
    prepared: promoting.Prepared,
) -> EnvironmentResult:
    env = loaded.name
    bound = log.bind(environment=env)
    if publish and ws.repo.head() != ws.head:
        # An environment earlier in this cycle pushed to the same repo: start from its
        # commit instead of losing a push race against ourselves.
        try:
            ws = await anyio.to_thread.run_sync(_read_workspace, loaded, repos_dir, git_timeout)
        except GitError as err:
            empty = EnvironmentPlan(environment=env, source=loaded.source)
            return EnvironmentResult(plan=empty, error=f"{env}: {err}")
    for attempt in range(1, push_attempts + 1):
        plan = _plan(loaded, ws, scans, clock, prepared)
        if await _resolve_digests(registry, plan, scans):
            plan = _plan(loaded, ws, scans, clock, prepared)
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
        if not publish or not plan.changes:
            return EnvironmentResult(plan=plan)
        try:
            sha = await anyio.to_thread.run_sync(_commit_and_push, loaded, ws, plan, clock())
        except PushRejected as exc:
            bound.warning("push_race", attempt=attempt, error=str(exc))
            try:
                ws = await anyio.to_thread.run_sync(_read_workspace, loaded, repos_dir, git_timeout)
            except GitError as err:
                return EnvironmentResult(plan=plan, error=f"{env}: {err}")
            continue
        except GitError as exc:
            bound.error("publish_failed", error=str(exc))
            return EnvironmentResult(plan=plan, error=f"{env}: {exc}")
        bound.info(
            "pushed", commit=sha, branch=loaded.policy.repo.branch, changes=len(plan.changes)
        )
        return EnvironmentResult(plan=plan, commit=sha)
    message = f"{env}: gave up after {push_attempts} push attempts: the branch kept moving"
    bound.error("publish_failed", error=message)
    return EnvironmentResult(plan=plan, error=message)


def _plan(
    loaded: LoadedPolicy,
    ws: _Workspace,
    scans: Mapping[str, ImageScan],
    clock: Clock,
    prepared: promoting.Prepared,
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
    )
    return promoting.annotate(plan, prepared)


def repo_cache_dir(repos_dir: Path, url: str) -> Path:
    return repos_dir / hashlib.sha256(url.encode()).hexdigest()[:16]


def _read_workspace(
    loaded: LoadedPolicy, repos_dir: Path, git_timeout: float = DEFAULT_GIT_TIMEOUT
) -> _Workspace:
    spec = loaded.policy.repo
    url = config.resolve_repo_url(spec.url, loaded.source)
    repo = EnvRepo(url, spec.branch, repo_cache_dir(repos_dir, url), timeout=git_timeout)
    head = repo.fetch()
    repositories = {i.normalized_repository for i in loaded.policy.images}
    files: dict[str, str] = {}
    targets: dict[str, list[rewrite.Target]] = {}
    problems: list[str] = []
    entries = repo.files(spec.path)
    if not entries:
        problems.append(
            f"{loaded.name}: {loaded.source}: repo.path {spec.path!r} holds no YAML files"
            f" on branch {spec.branch!r} of {redact(url)}"
        )
    for entry in entries:
        data = repo.read(entry)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{loaded.name}: {entry.path}: not UTF-8; skipped")
            continue
        if not rewrite.mentions(text, repositories):
            continue
        try:
            found = rewrite.locate(text, source=entry.path, repositories=repositories)
        except EditError as exc:
            problems.append(f"{loaded.name}: {exc}; file left untouched")
            continue
        found = in_scope(loaded.policy, found)  # detect: markers, marker_namespace
        if found:
            files[entry.path] = text
            targets[entry.path] = found
    for image in loaded.policy.images:
        if entries and not any(targets_for(image, ts) for ts in targets.values()):
            problems.append(
                f"{loaded.name}: image {image.name} ({image.repository}) is referenced by no"
                f" file under {spec.path}"
            )
            log.warning(
                "image_unreferenced",
                environment=loaded.name,
                image=image.name,
                repository=image.repository,
                path=spec.path,
            )
    log.info(
        "repo_read",
        environment=loaded.name,
        head=head,
        files=len(files),
        targets=sum(len(t) for t in targets.values()),
    )
    return _Workspace(repo=repo, head=head, files=files, targets=targets, problems=problems)


def _commit_and_push(
    loaded: LoadedPolicy, ws: _Workspace, plan: EnvironmentPlan, when: datetime
) -> str:
    author = loaded.policy.repo.author
    sha = ws.repo.commit(
        {path: text.encode("utf-8") for path, text in plan.new_files.items()},
        message=commit_message(plan),
        author_name=author.name,
        author_email=author.email,
        when=when,
    )
    ws.repo.push(sha)
    return sha
