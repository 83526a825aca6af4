"""Holds: a human moving an image back from a version imagebot set holds that version
until a newer one runs, or the hold is lifted (a trailer, or ``unhold`` in the policy).
``imagebot hold`` holds an image at the version it runs (an ``Imagebot-Hold`` trailer) until
``imagebot release`` lifts it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from imagebot.core.policy import ImagePolicy
from imagebot.core.selection.versions import SemverTag, parse_tag

from .history import HistoryCommit, Run, runs_of

TRAILER_LIFT_HOLD = "Imagebot-Lift-Hold"
TRAILER_HOLD = "Imagebot-Hold"  # <image> <version>: keep the image at that version
TRAILER_MANUAL = "Imagebot-Manual"  # <operation> <image>: promote, hold, release, rollback
TRAILER_REASON = "Imagebot-Reason"


@dataclass(frozen=True)
class Hold:
    """A version a human rolled back from: not proposed again until lifted."""

    image: str
    tag: str
    commit: str  # the rollback
    time: datetime
    author: str
    reason: str = ""
    #: ``imagebot hold``: the image stays at ``tag`` (else ``tag`` is kept out)
    manual: bool = False

    def blocks(self, tag: str | None) -> bool:
        return tag != self.tag if self.manual else tag == self.tag

    def words(self) -> str:
        """Why the version is held and how to lift it (the hold gate's message)."""
        why = f": {self.reason}" if self.reason else ""
        if self.manual:
            return (
                f"{self.image} is held at {self.tag} by {self.author} in {self.commit[:12]}"
                f" ({self.time:%Y-%m-%d %H:%M %Z}){why}; lifted by `imagebot release` (a"
                f" commit trailer `{TRAILER_LIFT_HOLD}: {self.image}`)"
            )
        return (
            f"{self.tag} was rolled back by {self.author} in {self.commit[:12]}"
            f" ({self.time:%Y-%m-%d %H:%M %Z}){why}; lifted by a newer version, `unhold:"
            f" [{self.tag}]` or a commit trailer `{TRAILER_LIFT_HOLD}: {self.image} {self.tag}`"
        )


def _version(tag: str | None) -> SemverTag | None:
    return parse_tag(tag) if tag else None


def _older(new: str | None, old: str | None, earlier: Iterable[str | None]) -> bool:
    """Is ``new`` an older version than ``old``? In selection's order when both read as
    versions of the same variant (``1.2.3-alpine`` is a variant, not a prerelease), else by
    history: ``new`` ran before ``old`` did."""
    a, b = _version(new), _version(old)
    if a is not None and b is not None and a.variant == b.variant:
        return a.key < b.key
    return new in set(earlier)


def _newer(tag: str | None, than: str) -> bool:
    a, b = _version(tag), _version(than)
    return a is not None and b is not None and a.variant == b.variant and a.key > b.key


def _lifts(commit: HistoryCommit, image: str) -> set[str | None]:
    """Versions of ``image`` this commit's trailers lift holds from (None: every version)."""
    out: set[str | None] = set()
    for key, value in commit.trailers:
        if key == TRAILER_LIFT_HOLD:
            words = value.split()
            if words and words[0] == image:
                out.update(words[1:] or [None])
    return out


def manual(trailers: Iterable[tuple[str, str]]) -> tuple[str, str, str] | None:
    """(operation, image, reason) of a commit ``imagebot promote/hold/release/rollback`` made,
    read from its trailers; None for any other commit."""
    said = dict(trailers)
    words = said.get(TRAILER_MANUAL, "").split()
    return (words[0], words[1], said.get(TRAILER_REASON, "")) if len(words) == 2 else None


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
    by_sha = {c.sha: c for c in history}
    holds: dict[str, Hold] = {}
    for i in range(1, len(runs)):
        prev, run = runs[i - 1], runs[i]
        commit = by_sha[run.commit]
        for tag in [t for t in holds if run.tag == t or _newer(run.tag, t)]:
            del holds[tag]
        op = manual(commit.trailers)
        if (
            not run.by_imagebot
            and (prev.by_imagebot or (op is not None and op[:2] == ("rollback", image.name)))
            and prev.tag is not None
            and _older(run.tag, prev.tag, (r.tag for r in runs[: i - 1]))
        ):
            holds[prev.tag] = Hold(
                image=image.name,
                tag=prev.tag,
                commit=commit.sha,
                time=commit.time,
                author=commit.author,
                reason=op[2] if op else "",
            )
    for commit in history:  # imagebot hold: the image stays at a version
        for key, value in commit.trailers:
            words = value.split()
            if key == TRAILER_HOLD and len(words) == 2 and words[0] == image.name:
                op = manual(commit.trailers)
                holds[f"={words[1]}"] = Hold(
                    image=image.name,
                    tag=words[1],
                    commit=commit.sha,
                    time=commit.time,
                    author=commit.author,
                    reason=op[2] if op else "",
                    manual=True,
                )
    # Lifting trailers count from the commit that started each hold onwards.
    order = {c.sha: n for n, c in enumerate(history)}
    for tag, hold in list(holds.items()):
        for commit in history[order[hold.commit] :]:
            lifted = _lifts(commit, image.name)
            if None in lifted or hold.tag in lifted:
                del holds[tag]
                break
    return [h for t, h in holds.items() if t not in image.unhold]
