"""History replay: the runs of each image, from the commits that touched an environment.

An environment's history is the list of commits that touched its path (read by
``imagebot.git.history``), each with the image references of the files it changed. Replaying
it gives each image's *runs*: which version (tag and digest) ran from when to when, and
whether imagebot or a human put it there. A reference belongs to the images
``governing.Ownership`` says own it, as in the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from imagebot.core.governing import Owner, Ownership
from imagebot.core.plan import TRAILER_DIGEST, TRAILER_ENVIRONMENT, TRAILER_IMAGE, TRAILER_TO
from imagebot.core.policy import ImagePolicy


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
    #: "promote by <author>: <reason>" when ``imagebot promote`` or ``rollback`` put it there
    manual: str | None = None

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
    return runs_by_image(Ownership([image]), history).get(image.name, [])


def runs_by_image(
    ownership: Ownership | Iterable[ImagePolicy], history: Sequence[HistoryCommit]
) -> dict[str, list[Run]]:
    """Every version each image ran in this history, oldest first, in one replay; keyed by
    the owner's image name (an image nothing refers to has no key).

    When several references of one image disagree, the first by file and line stands for
    the environment. Each commit costs only the references of the files it changed, so a
    thousand images over a thousand commits replay in well under a second."""
    if not isinstance(ownership, Ownership):
        ownership = Ownership(ownership)
    owners = ownership.owners
    found: dict[str, Owner] = {}
    state: dict[str, tuple[Ref, ...]] = {}
    where: dict[str, set[str]] = {}  # image -> files referring to it
    runs: dict[str, list[Run]] = {}
    for commit in history:
        changed = set(commit.files)
        if commit.snapshot:
            changed |= set(state)
            state = {}
        affected: set[str] = set()
        for path in changed:
            for ref in state.get(path, ()):
                for owner in owners(ref):
                    where[owner.image].discard(path)
                    affected.add(owner.image)
            refs = commit.files.get(path, ())
            if refs:
                state[path] = refs
            else:
                state.pop(path, None)
            for ref in refs:
                for owner in owners(ref):
                    found[owner.image] = owner
                    files = where.setdefault(owner.image, set())
                    if ref.tag or ref.digest:
                        files.add(path)
                    affected.add(owner.image)
        for name in affected:
            matching = [
                r
                for path in where[name]
                for r in state[path]
                if (r.tag or r.digest) and any(o.image == name for o in owners(r))
            ]
            if matching:
                ran = runs.setdefault(name, [])
                _record(ran, found[name].repository, min(matching, key=_position), commit)
    return runs


def _position(ref: Ref) -> tuple[str, int]:
    return ref.file, ref.line


def _record(runs: list[Run], repository: str, ref: Ref, commit: HistoryCommit) -> None:
    """Start a new run if ``ref`` differs from what the image ran until ``commit``."""
    digest = ref.digest or commit.trailer_digest(repository, ref.tag)
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
            manual=_manual_note(commit),
        )
    )


def _manual_note(commit: HistoryCommit) -> str | None:
    said = dict(commit.trailers)
    op = said.get("Imagebot-Manual", "").split()
    if not op:
        return None
    reason = said.get("Imagebot-Reason")
    return f"{op[0]} by {commit.author}" + (f": {reason}" if reason else "")
