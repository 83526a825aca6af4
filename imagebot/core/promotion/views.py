"""What each image of an environment may move to this cycle, and what stops it.

A promoted image's candidates are the versions its upstream ran, with the digest each ran
with, gated (``gates``); every image loses the versions a human rolled back from (holds).
The allowed candidates go to the environment's normal selection as its tag list, so its
own rules (range, allow, prerelease, include/exclude) narrow them and this module never
needs to know how selection works inside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from imagebot.core import windows
from imagebot.core.governing import Governance, Governed, Ownership
from imagebot.core.plan import EnvironmentPlan, ImageScan
from imagebot.core.policy import EnvironmentPolicy, ImagePolicy, LoadedPolicy
from imagebot.core.selection import Rejection, TagInfo, select
from imagebot.errors import SelectionError

from . import gates
from .history import HistoryCommit, Run, runs_by_image
from .holds import Hold, holds_of


@dataclass(frozen=True)
class ImageView:
    """What one image of one environment may move to, and what stops it."""

    image: str
    current: str | None
    #: the tags selection chooses from (gates and holds applied), with their digests
    tags: tuple[TagInfo, ...]
    digests: Mapping[str, str]
    #: what the environment's rules would choose were no gate or hold in the way
    wanted: str | None
    #: what they choose with gates and holds applied (None: nothing qualifies)
    chosen: str | None
    #: why ``wanted`` is not chosen (None: nothing blocks)
    blocker: Rejection | None = None
    #: promoted: the upstream commit each candidate first ran in, as ``env@sha``
    origins: Mapping[str, str] = field(default_factory=dict)
    holds: tuple[Hold, ...] = ()
    #: every candidate a promotion gate or hold turned away, with the first rejection
    blocked: Mapping[str, Rejection] = field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        return self.blocker is not None and self.wanted not in (None, self.current)


def view_image(
    image: ImagePolicy,
    *,
    current: str | None,
    tags: Sequence[TagInfo],
    blocked: Mapping[str, Rejection],
    now: datetime,
    digests: Mapping[str, str] | None = None,
    origins: Mapping[str, str] | None = None,
    holds: Sequence[Hold] = (),
) -> ImageView:
    """Apply ``blocked`` (tag -> rejection) to ``tags``; say what selection wants and gets."""
    rule = image.rule()

    def choose(among: Sequence[TagInfo]) -> str | None:
        return select(among, rule, current=current, now=now).tag if among else None

    allowed = tuple(t for t in tags if t.name not in blocked)
    chosen = choose(allowed)
    wanted = choose(tags) if len(allowed) != len(tags) else chosen
    # Something waits only when the rules want a version other than the running one.
    waits = wanted not in (None, current, chosen)
    return ImageView(
        image=image.name,
        current=current,
        tags=allowed,
        digests=dict(digests or {}),
        wanted=wanted,
        chosen=chosen,
        blocker=blocked.get(wanted) if waits and wanted is not None else None,
        origins=dict(origins or {}),
        holds=tuple(holds),
        blocked=dict(blocked),
    )


def promotion_view(
    image: ImagePolicy,
    *,
    environment: EnvironmentPolicy,
    current: str | None,
    upstream_runs: Sequence[Run],
    holds: Sequence[Hold],
    registry_tags: Mapping[str, TagInfo],
    now: datetime,
    statuses: gates.CommitStatuses | None = None,
    upstream_holds: Sequence[Hold] = (),
) -> ImageView:
    """Candidates of a promoted image: the versions its upstream ran, gated. A version a
    human rolled back from upstream (held there) is not promoted either."""
    promote = environment.promote
    assert promote is not None
    window_rule, freeze_rule = promote.periods()
    ctx = gates.Context(
        upstream=promote.from_,
        soak=promote.soak_time,
        checks=promote.checks,
        statuses=statuses,
        closed=windows.closed(window_rule, freeze_rule, now),
        holds={(h.tag, h.manual): h for h in holds},
        upstream_holds={h.tag: h for h in upstream_holds},
    )
    # A tag that ran with several digests (it was moved and pushed again): the newest digest
    # that passes the gates stands for it, else the newest one and what blocks it.
    by_tag: dict[str, list[gates.UpstreamVersion]] = {}
    ran = gates.upstream_versions(upstream_runs, now)
    for v in sorted(ran, key=lambda v: v.start, reverse=True):
        by_tag.setdefault(v.tag, []).append(v)
    latest: dict[str, gates.UpstreamVersion] = {}
    blocked: dict[str, Rejection] = {}
    for tag, versions in by_tag.items():
        reasons = [gates.rejection(v, ctx) for v in versions]
        passing = [v for v, r in zip(versions, reasons, strict=True) if r is None]
        latest[tag] = passing[0] if passing else versions[0]
        if not passing and reasons[0] is not None:
            blocked[tag] = reasons[0]
    tags = [
        replace(registry_tags.get(v.tag, TagInfo(name=v.tag)), name=v.tag, digest=v.digest)
        for v in latest.values()
    ]
    return view_image(
        image,
        current=current,
        tags=tags,
        blocked=blocked,
        now=now,
        digests={v.tag: v.digest for v in latest.values() if v.digest},
        origins={v.tag: f"{promote.from_}@{v.commit}" for v in latest.values()},
        holds=holds,
    )


def hold_back_groups(
    policy: EnvironmentPolicy, views: Mapping[str, ImageView]
) -> dict[str, ImageView]:
    """Images of one ``group`` move together or not at all: while one member waits for a
    gate, no member moves."""
    out = dict(views)
    groups: dict[str, list[str]] = {}
    for image in policy.images:
        if image.group and image.name in views:
            groups.setdefault(image.group, []).append(image.name)
    for group, members in groups.items():
        waiting = [m for m in members if views[m].waiting]
        if not waiting:
            continue
        first = views[waiting[0]]
        assert first.blocker is not None  # it waits
        why = Rejection("group", f"{group} waits for {first.image} ({first.blocker.words})")
        for m in members:
            v = views[m]
            if v.chosen not in (None, v.current) or m in waiting:
                out[m] = replace(
                    v, tags=(), chosen=None, blocker=v.blocker if m == first.image else why
                )
    return out


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
    governance: Governance,
    history: list[HistoryCommit],
    upstream: LoadedPolicy | None,
    upstream_history: list[HistoryCommit] | None,
    scans: Mapping[str, ImageScan],
    now: datetime,
    statuses: gates.CommitStatuses | None = None,
) -> Prepared:
    """Restrict each image's tags by promotion gates and holds."""
    policy = loaded.policy
    out = dict(scans)
    views: dict[str, ImageView] = {}
    own_runs = runs_by_image(Ownership(policy.images, policy.defaults), history)
    up_runs: dict[str, list[Run]] = {}
    if upstream is not None:
        up = upstream.policy
        up_runs = runs_by_image(Ownership(up.images, up.defaults), upstream_history or [])
    for g in governance.groups:
        image = g.rule
        if not isinstance(image, ImagePolicy) or image.pattern is not None:
            continue  # patterns and defaults follow the registry; no history of their own
        target = g.standing
        scan = scans.get(g.repository)
        holds = holds_of(image, history, own_runs.get(image.name, []))
        view: ImageView | str
        if policy.promote is not None:
            up_image = upstream.policy.image(image.name) if upstream else None
            if up_image is None or upstream_history is None:
                # The planner reports it as this image's problem; the others still move.
                out[g.repository] = ImageScan(
                    error=f"no image {image.name!r} in upstream environment"
                    f" {policy.promote.from_}; not promoted"
                )
                continue
            registry_tags = {t.name: t for t in scan.tags} if scan and not scan.error else {}
            up_history = up_runs.get(up_image.name, [])
            view = _guarded(
                promotion_view,
                image,
                upstream_holds=holds_of(up_image, upstream_history, up_history),
                environment=policy,
                current=target.tag,
                upstream_runs=up_history,
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
                blocked={
                    t.name: gates.hold_rejection(h)
                    for t in scan.tags
                    for h in holds
                    if h.blocks(t.name)
                },
                now=now,
                digests=scan.digests,
                holds=holds,
            )
        else:
            continue
        if isinstance(view, str):
            # A rule selection refuses (a pattern that backtracks too long, say): this image
            # stays where it is and the planner reports why; the others still move.
            out[g.repository] = ImageScan(error=view)
            continue
        views[image.name] = view
    if policy.promote is not None:
        views = hold_back_groups(policy, views)
    for g in governance.groups:
        if (chosen := views.get(g.image)) is not None:
            out[g.repository] = ImageScan(tags=chosen.tags, digests=chosen.digests)
    return Prepared(scans=out, views=views, runs=own_runs)


def refuse(prepared: Prepared, g: Governed, refused: Mapping[str, Rejection]) -> Prepared:
    """Turn away the versions of ``g`` a later gate refused (verify: run only on the versions
    that would win, so it comes after selection), so the environment is planned again."""
    scan = prepared.scans[g.repository]
    view = prepared.views.get(g.image) or ImageView(
        g.image, g.standing.tag, scan.tags, scan.digests, wanted=None, chosen=None
    )
    tags = tuple(t for t in view.tags if t.name not in refused)
    first = next(iter(refused.values()))
    view = replace(
        view, tags=tags, blocked={**view.blocked, **refused}, blocker=view.blocker or first
    )
    scans = {**prepared.scans, g.repository: ImageScan(tags=tags, digests=view.digests)}
    return replace(prepared, scans=scans, views={**prepared.views, g.image: view})


def _guarded(build: Callable[..., ImageView], image: ImagePolicy, **kwargs: Any) -> ImageView | str:
    try:
        return build(image, **kwargs)
    except SelectionError as exc:
        return f"selection failed: {exc}"


def annotate(plan: EnvironmentPlan, prepared: Prepared) -> EnvironmentPlan:
    """Say in the plan where promoted versions come from."""
    views = prepared.views
    promoted = {}
    changes = []
    for c in plan.changes:
        view = views.get(c.image)
        origin = view.origins.get(c.new_tag) if view and c.new_tag else None
        if origin is not None:
            promoted[c.image] = origin
            c = replace(c, reason=f"promoted from {origin}; {c.reason}")
        changes.append(c)
    return replace(plan, changes=tuple(changes), promoted_from=promoted)
