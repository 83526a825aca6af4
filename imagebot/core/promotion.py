"""Promotion and holds, from git history alone: pure functions over plain values.

An environment's history is the list of commits that touched its path (read by
``imagebot.git.history``), each with the image references of the files it changed. Replaying it
gives each image's *runs*: which version (tag and digest) ran from when to when, and whether
imagebot or a human put it there. From runs come:

- **candidates** for a promoted environment: every version its upstream ran, with the digest
  it ran with, minus those a gate blocks (soak, checks, windows and freezes);
- **holds** in every environment: a human moving an image back from a version imagebot set
  holds that version until a newer one runs, or the hold is lifted.

The candidates are handed to the environment's normal selection as its tag list (with their
digests), so its own rules (range, allow, prerelease, include/exclude) narrow them and this
module never needs to know how selection works inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import semver

from imagebot.core import windows
from imagebot.core.durations import format_duration
from imagebot.core.plan import TRAILER_DIGEST, TRAILER_ENVIRONMENT, TRAILER_IMAGE, TRAILER_TO
from imagebot.core.policy import EnvironmentPolicy, ImagePolicy
from imagebot.core.selection import SelectionRule, TagInfo, select

TRAILER_LIFT_HOLD = "Imagebot-Lift-Hold"

#: The commit statuses of one upstream commit, as read from its forge before the cycle
#: decides: (environment, sha) -> {context: state} with states "success", "pending",
#: "failure", "error"; None when they could not be read. Without one at all, checks
#: cannot be verified and the gate blocks.
CommitStatuses = Callable[[str, str], Mapping[str, str] | None]


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class Ref:
    """One image reference in one file at some commit."""

    file: str
    line: int
    repository: str | None
    policy: str | None  # a marker's policy name
    tag: str | None
    digest: str | None


@dataclass(frozen=True)
class HistoryCommit:
    """A commit that touched an environment's path, with the references of the files it
    changed (a deleted file has none). A ``snapshot`` holds every file of the path: the
    oldest commit read, where older history is not looked at."""

    sha: str
    time: datetime
    author: str
    trailers: tuple[tuple[str, str], ...]
    files: Mapping[str, tuple[Ref, ...]]
    snapshot: bool = False

    @property
    def by_imagebot(self) -> bool:
        return any(key == TRAILER_ENVIRONMENT for key, _ in self.trailers)

    def trailer_digest(self, repository: str, tag: str | None) -> str | None:
        """The digest imagebot recorded for ``repository`` moving to ``tag``, if it did."""
        current: str | None = None
        to: str | None = None
        for key, value in self.trailers:
            if key == TRAILER_IMAGE:
                current, to = value, None
            elif key == TRAILER_TO and current == repository:
                to = value
            elif (
                key == TRAILER_DIGEST
                and current == repository
                and to is not None
                and to.split("@", 1)[0] == tag
            ):
                return value
        return None


@dataclass(frozen=True)
class Run:
    """A version of one image running in one environment from ``start`` to ``stop``."""

    tag: str | None
    digest: str | None
    start: datetime
    stop: datetime | None  # None: still running
    commit: str  # the commit that put it there
    by_imagebot: bool

    def ran(self, now: datetime) -> timedelta:
        return (self.stop or now) - self.start


def fold_history(history: Sequence[HistoryCommit], limit: int) -> list[HistoryCommit]:
    """Keep the newest ``limit`` commits; the oldest kept becomes a snapshot of the files as
    they stood after it, so runs that started earlier look as if they started there."""
    if len(history) <= limit:
        return list(history)
    cut = len(history) - limit
    state: dict[str, tuple[Ref, ...]] = {}
    for commit in history[: cut + 1]:
        if commit.snapshot:
            state = {}
        state.update(commit.files)
    first = replace(
        history[cut], files={f: refs for f, refs in state.items() if refs}, snapshot=True
    )
    return [first, *history[cut + 1 :]]


def runs_of(image: ImagePolicy, history: Sequence[HistoryCommit]) -> list[Run]:
    """Every version ``image`` ran in this history, oldest first (see ``runs_by_image``)."""
    return runs_by_image([image], history)[image.name]


def runs_by_image(
    images: Sequence[ImagePolicy], history: Sequence[HistoryCommit]
) -> dict[str, list[Run]]:
    """Every version each image ran in this history, oldest first, in one replay.

    A reference belongs to an image by its marker's policy name, else by repository (as
    the planner matches targets). When several references disagree, the first by file and
    line stands for the environment. Each commit costs only the references of the files it
    changed, so a thousand images over a thousand commits replay in well under a second."""
    by_name = {i.name: i for i in images}
    by_repo: dict[str, list[ImagePolicy]] = {}
    for image in images:
        by_repo.setdefault(image.normalized_repository, []).append(image)

    def owners(ref: Ref) -> Iterable[ImagePolicy]:
        if ref.policy is not None:
            for name in {ref.policy, ref.policy.rsplit(":", 1)[-1]}:
                if name in by_name:
                    yield by_name[name]
        elif ref.repository is not None:
            yield from by_repo.get(ref.repository, ())

    state: dict[str, tuple[Ref, ...]] = {}
    where: dict[str, set[str]] = {i.name: set() for i in images}  # files referring to it
    runs: dict[str, list[Run]] = {i.name: [] for i in images}
    for commit in history:
        changed = set(commit.files)
        if commit.snapshot:
            changed |= set(state)
            state = {}
        affected: set[str] = set()
        for path in changed:
            for ref in state.get(path, ()):
                for image in owners(ref):
                    where[image.name].discard(path)
                    affected.add(image.name)
            refs = commit.files.get(path, ())
            if refs:
                state[path] = refs
            else:
                state.pop(path, None)
            for ref in refs:
                for image in owners(ref):
                    if ref.tag or ref.digest:
                        where[image.name].add(path)
                    affected.add(image.name)
        for name in affected:
            image = by_name[name]
            matching = [
                r
                for path in where[name]
                for r in state[path]
                if (r.tag or r.digest) and image in owners(r)
            ]
            if matching:
                _record(runs[name], image, min(matching, key=_position), commit)
    return runs


def _position(ref: Ref) -> tuple[str, int]:
    return ref.file, ref.line


def _record(runs: list[Run], image: ImagePolicy, ref: Ref, commit: HistoryCommit) -> None:
    """Start a new run if ``ref`` differs from what the image ran until ``commit``."""
    digest = ref.digest or commit.trailer_digest(image.normalized_repository, ref.tag)
    last = runs[-1] if runs else None
    if (
        last is not None
        and last.tag == ref.tag
        and (digest is None or last.digest in (None, digest))
    ):
        if last.digest is None and digest is not None:  # learnt from a trailer
            runs[-1] = replace(last, digest=digest)
        return
    if last is not None:
        runs[-1] = replace(last, stop=commit.time)
    runs.append(
        Run(
            tag=ref.tag,
            digest=digest,
            start=commit.time,
            stop=None,
            commit=commit.sha,
            by_imagebot=commit.by_imagebot,
        )
    )


# --------------------------------------------------------------------------- holds


@dataclass(frozen=True)
class Hold:
    """A version a human rolled back from: not proposed again until lifted."""

    image: str
    tag: str
    commit: str  # the rollback
    time: datetime
    author: str

    def reason(self) -> str:
        return (
            f"hold: {self.tag} was rolled back by {self.author} in {self.commit[:12]}"
            f" ({self.time:%Y-%m-%d %H:%M %Z}); lifted by a newer version, `unhold:"
            f" [{self.tag}]` or a commit trailer `{TRAILER_LIFT_HOLD}: {self.image} {self.tag}`"
        )


def _semver(tag: str | None) -> semver.Version | None:
    if not tag:
        return None
    try:
        return semver.Version.parse(tag.removeprefix("v"))
    except ValueError:
        return None


def _older(new: str | None, old: str | None, earlier: Iterable[str | None]) -> bool:
    """Is ``new`` an older version than ``old``? By semver when both read as versions,
    else by history: ``new`` ran before ``old`` did."""
    a, b = _semver(new), _semver(old)
    if a is not None and b is not None:
        return a < b
    return new in set(earlier)


def _newer(tag: str | None, than: str) -> bool:
    a, b = _semver(tag), _semver(than)
    return a is not None and b is not None and a > b


def _lifts(commit: HistoryCommit, image: str) -> set[str | None]:
    """Versions of ``image`` this commit's trailers lift holds from (None: every version)."""
    out: set[str | None] = set()
    for key, value in commit.trailers:
        if key == TRAILER_LIFT_HOLD:
            words = value.split()
            if words and words[0] == image:
                out.update(words[1:] or [None])
    return out


def holds_of(
    image: ImagePolicy, history: Sequence[HistoryCommit], runs: Sequence[Run] | None = None
) -> list[Hold]:
    """The holds on ``image`` standing at the end of ``history``.

    A hold starts when a commit imagebot did not write moves the image from a version
    imagebot set to an older one. It ends when the held version or a newer one runs again,
    when a later commit (or the rollback itself) carries ``Imagebot-Lift-Hold: <image>
    [<version>]``, or when the policy lists the version under ``unhold``. ``runs`` are the
    image's runs in ``history`` when already known."""
    if runs is None:
        runs = runs_of(image, history)
    if len(runs) < 2:  # never moved: nothing was rolled back
        return []
    by_sha = {c.sha: c for c in history}
    holds: dict[str, Hold] = {}
    for i in range(1, len(runs)):
        prev, run = runs[i - 1], runs[i]
        commit = by_sha[run.commit]
        for tag in [t for t in holds if run.tag == t or _newer(run.tag, t)]:
            del holds[tag]
        if (
            not run.by_imagebot
            and prev.by_imagebot
            and prev.tag is not None
            and _older(run.tag, prev.tag, (r.tag for r in runs[: i - 1]))
        ):
            holds[prev.tag] = Hold(
                image=image.name,
                tag=prev.tag,
                commit=commit.sha,
                time=commit.time,
                author=commit.author,
            )
    # Lifting trailers count from the commit that started each hold onwards.
    order = {c.sha: n for n, c in enumerate(history)}
    for tag, hold in list(holds.items()):
        for commit in history[order[hold.commit] :]:
            lifted = _lifts(commit, image.name)
            if None in lifted or tag in lifted:
                del holds[tag]
                break
    return [h for t, h in holds.items() if t not in image.unhold]


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class UpstreamVersion:
    """A version the upstream environment ran, and for how long at best."""

    tag: str
    digest: str | None
    commit: str  # the upstream commit that first put it there
    start: datetime
    longest: timedelta  # its longest single run so far
    running: bool


def upstream_versions(runs: Sequence[Run], now: datetime) -> list[UpstreamVersion]:
    """Each distinct (tag, digest) upstream ran, oldest first."""
    out: dict[tuple[str, str | None], UpstreamVersion] = {}
    for run in runs:
        if run.tag is None:
            continue
        key = (run.tag, run.digest)
        seen = out.get(key)
        ran = run.ran(now)
        if seen is None:
            out[key] = UpstreamVersion(
                tag=run.tag,
                digest=run.digest,
                commit=run.commit,
                start=run.start,
                longest=ran,
                running=run.stop is None,
            )
        else:
            out[key] = replace(
                seen, longest=max(seen.longest, ran), running=seen.running or run.stop is None
            )
    return list(out.values())


def soak_gate(version: UpstreamVersion, soak: timedelta, upstream: str) -> str | None:
    if version.longest >= soak:
        return None
    ran = format_duration(version.longest)
    if version.running:
        left = format_duration(soak - version.longest)
        return (
            f"soak: {version.tag} has run in {upstream} for {ran} of {format_duration(soak)}"
            f" ({left} left)"
        )
    return (
        f"soak: {version.tag} ran in {upstream} for only {ran} of {format_duration(soak)}"
        " and no longer runs there"
    )


def checks_gate(
    version: UpstreamVersion,
    checks: Sequence[str],
    upstream: str,
    statuses: CommitStatuses | None,
) -> str | None:
    if not checks:
        return None
    if statuses is None:
        return (
            f"checks: {', '.join(checks)} cannot be verified: no forge API is configured for"
            f" {upstream}'s repository, so promotion waits"
        )
    states = statuses(upstream, version.commit)
    if states is None:
        return (
            f"checks: the statuses of {upstream}@{version.commit[:12]} could not be read"
            " from the forge, so promotion waits"
        )
    failing = [f"{c}={states.get(c, 'missing')}" for c in checks if states.get(c) != "success"]
    if failing:
        return f"checks: on {upstream}@{version.commit[:12]}: {', '.join(failing)}"
    return None


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
    blocker: str | None = None
    #: promoted: the upstream commit each candidate first ran in, as ``env@sha``
    origins: Mapping[str, str] = field(default_factory=dict)
    holds: tuple[Hold, ...] = ()

    @property
    def waiting(self) -> bool:
        return self.blocker is not None and self.wanted not in (None, self.current)


def _choose(
    tags: Sequence[TagInfo], rule: SelectionRule, current: str | None, now: datetime
) -> str | None:
    return select(tags, rule, current=current, now=now).tag if tags else None


def view_image(
    image: ImagePolicy,
    *,
    current: str | None,
    tags: Sequence[TagInfo],
    blocked: Mapping[str, str],
    now: datetime,
    digests: Mapping[str, str] | None = None,
    origins: Mapping[str, str] | None = None,
    holds: Sequence[Hold] = (),
) -> ImageView:
    """Apply ``blocked`` (tag -> reason) to ``tags`` and say what selection wants and gets."""
    rule = image.rule()
    allowed = tuple(t for t in tags if t.name not in blocked)
    chosen = _choose(allowed, rule, current, now)
    wanted = _choose(tags, rule, current, now) if len(allowed) != len(tags) else chosen
    # Something waits only when the rules want a version other than the running one.
    waits = wanted not in (None, current, chosen)
    blocker = blocked.get(wanted) if waits and wanted is not None else None
    return ImageView(
        image=image.name,
        current=current,
        tags=allowed,
        digests=dict(digests or {}),
        wanted=wanted,
        chosen=chosen,
        blocker=blocker,
        origins=dict(origins or {}),
        holds=tuple(holds),
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
    statuses: CommitStatuses | None = None,
    upstream_holds: Sequence[Hold] = (),
) -> ImageView:
    """Candidates of a promoted image: the versions its upstream ran, gated. A version a
    human rolled back from upstream (held there) is not promoted either."""
    promote = environment.promote
    assert promote is not None
    upstream = promote.from_
    window_rule, freeze_rule = promote.periods()
    closed = windows.closed(window_rule, freeze_rule, now)
    held = {h.tag: h.reason() for h in holds}
    held_upstream = {h.tag: f"held in {upstream}: {h.reason()}" for h in upstream_holds}

    def gate(v: UpstreamVersion) -> str | None:
        return (
            held.get(v.tag)
            or held_upstream.get(v.tag)
            or soak_gate(v, promote.soak_time, upstream)
            or checks_gate(v, promote.checks, upstream, statuses)
            or (f"window: {closed.reason}" if closed else None)
        )

    # A tag that ran with several digests (it was moved and pushed again): the newest digest
    # that passes the gates stands for it, else the newest one and what blocks it.
    by_tag: dict[str, list[UpstreamVersion]] = {}
    for v in sorted(upstream_versions(upstream_runs, now), key=lambda v: v.start, reverse=True):
        by_tag.setdefault(v.tag, []).append(v)
    chosen: dict[str, UpstreamVersion] = {}
    blocked: dict[str, str] = {}
    for tag, versions in by_tag.items():
        reasons = [gate(v) for v in versions]
        passing = [v for v, r in zip(versions, reasons, strict=True) if r is None]
        chosen[tag] = passing[0] if passing else versions[0]
        if not passing:
            blocked[tag] = str(reasons[0])
    latest = chosen
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
        origins={v.tag: f"{upstream}@{v.commit}" for v in latest.values()},
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
        why = f"group {group}: waits for {first.image} ({first.blocker})"
        for m in members:
            v = views[m]
            if v.chosen not in (None, v.current) or m in waiting:
                out[m] = replace(
                    v, tags=(), chosen=None, blocker=v.blocker if m == first.image else why
                )
    return out
