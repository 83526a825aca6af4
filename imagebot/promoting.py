"""Promotion and holds within one cycle: history in, restricted tag lists out.

For each image of an environment this module works out, from git history alone, which
versions the environment may take: a promoted image takes what its upstream environment
ran (gated by soak, checks, windows and freezes), every image loses the versions a human
rolled back from (holds). The result is an ``ImageScan`` per repository that the ordinary
planner chooses from, so selection rules still narrow promoted versions. Decisions are
made by ``imagebot.core.promotion``; this module fetches history and wires values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from imagebot.core import rewrite
from imagebot.core.plan import EnvironmentPlan, ImageScan
from imagebot.core.policy import ImagePolicy, LoadedPolicy
from imagebot.core.promotion import (
    CommitStatuses,
    HistoryCommit,
    ImageView,
    Run,
    hold_back_groups,
    holds_of,
    promotion_view,
    runs_by_image,
    view_image,
)
from imagebot.errors import ImagebotError, SelectionError
from imagebot.git.history import path_history
from imagebot.git.repo import EnvRepo

#: Reads the commit statuses of a commit in an environment's repo through its forge:
#: {context: state}. Raises ImagebotError when the forge cannot answer.
StatusSource = Callable[[LoadedPolicy, str], Awaitable[Mapping[str, str]]]


def read_history(loaded: LoadedPolicy, repo: EnvRepo) -> list[HistoryCommit]:
    """The environment's history from its fetched clone, cached beside the clone."""
    spec = loaded.policy.repo
    name = hashlib.sha256(f"{spec.branch}\0{spec.path}".encode()).hexdigest()[:16]
    return path_history(
        repo,
        spec.path,
        {i.normalized_repository for i in loaded.policy.images},
        cache_file=repo.path / "imagebot-history" / f"{name}.json",
    )


async def read_statuses(
    loaded: LoadedPolicy,
    upstream: LoadedPolicy,
    upstream_history: Sequence[HistoryCommit],
    source: StatusSource,
) -> CommitStatuses:
    """Ask the forge once for the statuses of every upstream commit a candidate of
    ``loaded`` ran in; a failed read leaves that commit's checks unverified."""
    up_images = [i for image in loaded.policy.images if (i := upstream.policy.image(image.name))]
    shas = {
        run.commit for runs in runs_by_image(up_images, upstream_history).values() for run in runs
    }
    found: dict[str, Mapping[str, str] | None] = {}
    for sha in sorted(shas):
        try:
            found[sha] = await source(upstream, sha)
        except ImagebotError:
            found[sha] = None
    return lambda _env, sha: found.get(sha)


def current_versions(
    images: Sequence[ImagePolicy], targets: Mapping[str, Sequence[rewrite.Target]]
) -> dict[str, rewrite.Target]:
    """The reference that stands for each image (by name): the first, by file and line, of
    those ``targets_for`` gives it — a marker naming the entry, else its repository. One pass
    over the targets, whatever the number of images."""
    first: dict[str, rewrite.Target] = {}  # "repo:<repository>" / "marker:<name>" -> target
    for path in sorted(targets):
        for t in targets[path]:
            if t.policy is not None:
                first.setdefault(f"marker:{t.policy}", t)
                first.setdefault(f"marker:{t.policy.rsplit(':', 1)[-1]}", t)
            elif t.repository is not None:
                first.setdefault(f"repo:{t.repository}", t)
    rank = {id(t): n for n, t in enumerate(first.values())}  # insertion is file-and-line order
    out: dict[str, rewrite.Target] = {}
    for image in images:
        keys = (f"marker:{image.name}", f"repo:{image.normalized_repository}")
        found = [first[key] for key in keys if key in first]
        if found:
            out[image.name] = min(found, key=lambda target: rank[id(target)])
    return out


#: What a candidate waits for in an environment that publishes by pull request.
APPROVAL = "approval: the environment's pull request must be merged"


@dataclass(frozen=True)
class ImageStatus:
    """One row of ``imagebot status``."""

    environment: str
    image: str
    repository: str
    tag: str | None
    digest: str | None
    since_commit: str | None
    since: datetime | None
    candidate: str | None  # the version it moves to next (None: stays)
    blocker: str | None  # why a newer version waits
    upstream: str | None  # promote.from


@dataclass(frozen=True)
class Prepared:
    """What one environment chooses from in this cycle."""

    scans: dict[str, ImageScan]
    views: dict[str, ImageView]
    #: each image's runs in this environment's history
    runs: dict[str, list[Run]]


def prepare(
    loaded: LoadedPolicy,
    *,
    targets: Mapping[str, Sequence[rewrite.Target]],
    history: list[HistoryCommit],
    upstream: LoadedPolicy | None,
    upstream_history: list[HistoryCommit] | None,
    scans: Mapping[str, ImageScan],
    now: datetime,
    statuses: CommitStatuses | None = None,
) -> Prepared:
    """Restrict each image's tags by promotion gates and holds."""
    policy = loaded.policy
    out = dict(scans)
    views: dict[str, ImageView] = {}
    own_runs = runs_by_image(policy.images, history)
    up_images = [
        i for image in policy.images if upstream and (i := upstream.policy.image(image.name))
    ]
    up_runs = runs_by_image(up_images, upstream_history or [])
    current = current_versions(policy.images, targets)
    for image in policy.images:
        target = current.get(image.name)
        if target is None:
            continue
        repo = image.normalized_repository
        scan = scans.get(repo)
        holds = holds_of(image, history, own_runs[image.name])
        if policy.promote is not None:
            up_image = upstream.policy.image(image.name) if upstream else None
            if up_image is None or upstream_history is None:
                # The planner reports it as this image's problem; the others still move.
                out[repo] = ImageScan(
                    error=f"no image {image.name!r} in upstream environment"
                    f" {policy.promote.from_}; not promoted"
                )
                continue
            registry_tags = {t.name: t for t in scan.tags} if scan and not scan.error else {}
            view = _guarded(
                promotion_view,
                image,
                upstream_holds=holds_of(up_image, upstream_history, up_runs[up_image.name]),
                environment=policy,
                current=target.tag,
                upstream_runs=up_runs[up_image.name],
                holds=holds,
                registry_tags=registry_tags,
                now=now,
                statuses=statuses,
            )
        elif holds and scan is not None and scan.error is None:
            view = _guarded(
                view_image,
                image,
                current=target.tag,
                tags=scan.tags,
                blocked={h.tag: h.reason() for h in holds},
                now=now,
                digests=scan.digests,
                holds=holds,
            )
        else:
            continue
        if isinstance(view, str):
            # A rule selection refuses (a pattern that backtracks too long, say): this image
            # stays where it is and the planner reports why; the others still move.
            out[repo] = ImageScan(error=view)
            continue
        views[image.name] = view
    if policy.promote is not None:
        views = hold_back_groups(policy, views)
    for image in policy.images:
        if image.name in views:
            chosen = views[image.name]
            out[image.normalized_repository] = ImageScan(tags=chosen.tags, digests=chosen.digests)
    return Prepared(scans=out, views=views, runs=own_runs)


def _guarded(build: Callable[..., ImageView], image: ImagePolicy, **kwargs: Any) -> ImageView | str:
    try:
        return build(image, **kwargs)
    except SelectionError as exc:
        return f"selection failed: {exc}"


def annotate(plan: EnvironmentPlan, prepared: Prepared) -> EnvironmentPlan:
    """Say in the plan where promoted versions come from and what keeps an image waiting."""
    views = prepared.views
    changes = tuple(
        replace(c, reason=f"promoted from {origin}; {c.reason}")
        if (origin := _origin(views, c.image, c.new_tag))
        else c
        for c in plan.changes
    )
    decisions = tuple(
        (image, current, replace(d, reason=f"waiting: {views[image].blocker}"))
        if image in views and views[image].blocker and d.tag in (None, current)
        else (image, current, d)
        for image, current, d in plan.decisions
    )
    promoted = {c.image: origin for c in changes if (origin := _origin(views, c.image, c.new_tag))}
    return replace(
        plan,
        changes=changes,
        decisions=decisions,
        promoted_from=promoted,
    )


def _origin(views: Mapping[str, ImageView], image: str, tag: str | None) -> str | None:
    view = views.get(image)
    return view.origins.get(tag) if view is not None and tag is not None else None


def statuses_of(
    loaded: LoadedPolicy,
    *,
    targets: Mapping[str, Sequence[rewrite.Target]],
    prepared: Prepared,
    plan: EnvironmentPlan,
) -> tuple[ImageStatus, ...]:
    """Per image: what runs, since when, what comes next and what it waits for."""
    chosen = {image: d.tag for image, _, d in plan.decisions}
    by_pull_request = loaded.policy.publish.mode == "pull-request"
    rows = []
    current = current_versions(loaded.policy.images, targets)
    for image in loaded.policy.images:
        target = current.get(image.name)
        if target is None:
            continue
        runs = prepared.runs.get(image.name, [])
        last = runs[-1] if runs and runs[-1].tag == target.tag else None
        view = prepared.views.get(image.name)
        candidate = chosen.get(image.name)
        next_version = candidate if candidate not in (None, target.tag) else None
        rows.append(
            ImageStatus(
                environment=loaded.name,
                image=image.name,
                repository=image.normalized_repository,
                tag=target.tag,
                digest=target.digest or (last.digest if last else None),
                since_commit=last.commit if last else None,
                since=last.start if last else None,
                candidate=next_version,
                blocker=(view.blocker if view is not None else None)
                or (APPROVAL if next_version and by_pull_request else None),
                upstream=loaded.policy.promote.from_ if loaded.policy.promote else None,
            )
        )
    return tuple(rows)
