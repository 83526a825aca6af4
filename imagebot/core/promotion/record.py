"""The decision record: per environment and image, everything a cycle decided — what runs,
every candidate with the verdict of the gate chain, the choice, the publication and errors.

``plan``, ``apply``, ``status`` and the daemon render it; nothing recomputes it. It is a
plain immutable value, and ``to_json`` makes it one JSON object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from imagebot.core.plan import EnvironmentPlan
from imagebot.core.policy import LoadedPolicy
from imagebot.core.selection import GateVerdicts, Rejection, gates_json, passed

from .holds import Hold
from .views import Prepared

#: draft and open wait for a review; closed: a human closed it unmerged; human-edited: a
#: human pushed to its branch, so imagebot leaves it alone; merged: done.
PullRequestState = Literal["open", "draft", "closed", "human-edited", "merged"]


@dataclass(frozen=True)
class PendingManual:
    """A manual operation (``imagebot promote/hold/release/rollback``) waiting in the
    environment's pull request: it takes effect once the pull request is merged."""

    operation: str
    image: str
    what: str  # the commit's subject without its prefix: "promote app 1.0.0 -> 1.1.0"
    author: str
    reason: str
    commit: str

    def words(self) -> str:
        return f"{self.what} by {self.author}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class PullRequestRecord:
    """The environment's pull request as the forge shows it."""

    number: int
    url: str
    state: PullRequestState
    #: (repository, version) pairs the pull request proposes
    holds: frozenset[tuple[str, str]] = frozenset()
    #: the manual operations it carries, oldest first (imagebot leaves it as it is meanwhile)
    manual: tuple[PendingManual, ...] = ()


@dataclass(frozen=True)
class Running:
    """What runs: the version in the files, and the commit that put it there, since when."""

    tag: str | None
    digest: str | None
    since: datetime | None
    commit: str | None
    manual: str | None = None  # who put it there by hand, and why (imagebot promote/rollback)


@dataclass(frozen=True)
class Candidate:
    """One version the image could move to, and the verdict of each gate of the chain on it
    (selection gates, then promotion gates), in chain order."""

    tag: str
    accepted: bool
    gate: str | None  # the first gate that rejected it
    reason: str
    digest: str | None = None
    verdicts: GateVerdicts = ()

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "verdicts": gates_json(self.verdicts)}


@dataclass(frozen=True)
class ImageRecord:
    """The decision for one image of one environment."""

    environment: str
    image: str
    repository: str
    upstream: str | None  # promote.from
    running: Running
    candidates: tuple[Candidate, ...]
    choice: str | None  # the version it moves to next (None: it stays)
    waiting: Rejection | None  # what keeps a newer version from running
    holds: tuple[Hold, ...] = ()
    publish: str = "commit"  # the environment's publish mode
    commit: str | None = None  # the commit this cycle made
    pull_request: PullRequestRecord | None = None
    errors: tuple[str, ...] = ()
    verified: str | None = None  # what the choice was verified with (the verify gate)

    @property
    def blocker(self) -> str | None:
        return self.waiting.words if self.waiting else None

    def to_json(self) -> dict[str, Any]:
        pr = self.pull_request
        return {
            "image": self.image,
            "repository": self.repository,
            "running": {"tag": self.running.tag, "digest": self.running.digest},
            "since": {
                "commit": self.running.commit,
                "time": self.running.since.isoformat() if self.running.since else None,
                "manual": self.running.manual,
            },
            "candidate": self.choice,
            "waiting_for": self.blocker,
            "gate": self.waiting.gate if self.waiting else None,
            "candidates": [c.to_json() for c in self.candidates],
            "holds": [
                {
                    "version": h.tag,
                    "commit": h.commit,
                    "author": h.author,
                    "since": h.time.isoformat(),
                    "reason": h.reason,
                    "manual": h.manual,
                }
                for h in self.holds
            ],
            "publish": self.publish,
            "commit": self.commit,
            "pull_request": None
            if pr is None
            else {
                "number": pr.number,
                "url": pr.url,
                "state": pr.state,
                "holds": sorted(v for r, v in pr.holds if r == self.repository),
                "manual": [vars(m) for m in pr.manual if m.image == self.image],
            },
            "errors": list(self.errors),
            "verified": self.verified,
        }


def approval(
    mode: str, pr: PullRequestRecord | None, image: str, repository: str, choice: str | None
) -> tuple[str | None, Rejection | None]:
    """The last gate of an environment that publishes by pull request: a version lands once
    its pull request is merged. Returns what comes next and what it waits for."""
    if pr is not None and pr.manual:  # imagebot proposes nothing beside a person's operation
        mine = [m.words() for m in pr.manual if m.image == image]
        where = f"pull request #{pr.number} ({pr.url})"
        if mine:
            return None, Rejection("manual", f"{'; '.join(mine)}: waits in {where} to be merged")
        if choice is not None:
            return choice, Rejection(
                "manual",
                f"{where} carries manual operations; {choice} is proposed once it is merged"
                " or closed",
            )
    if mode != "pull-request" or choice is None:
        return choice, None
    if pr is not None and pr.state == "closed":  # declined: nothing waits for approval
        return None, Rejection(
            "declined",
            f"pull request #{pr.number} ({pr.url}) proposing {choice} was closed without"
            " merging; not proposed again until a newer version",
        )
    if pr is not None and pr.state == "human-edited":
        held = sorted(v for r, v in pr.holds if r == repository)
        return (held[0] if held else None), Rejection(
            "human-owned",
            f"pull request #{pr.number} ({pr.url}) holds {', '.join(held) or 'no version of it'}"
            " and has commits imagebot did not write: a human owns it until it is merged or"
            " closed",
        )
    which = f" #{pr.number} ({pr.url})" if pr is not None else ""
    return choice, Rejection("approval", f"the environment's pull request{which} must be merged")


def records(
    loaded: LoadedPolicy,
    plan: EnvironmentPlan,
    prepared: Prepared,
    *,
    commit: str | None = None,
    pull_request: PullRequestRecord | None = None,
    error: str | None = None,
) -> tuple[ImageRecord, ...]:
    """The record of every image the environment's files refer to, in plan order."""
    policy = loaded.policy
    chosen = {image: (current, d) for image, current, d in plan.decisions}
    out = []

    def mine(image: str) -> tuple[str, str]:
        return f"{loaded.name}: image {image} ", f"{loaded.name}: image {image}:"

    for g in plan.governed:
        target = g.standing
        runs = prepared.runs.get(g.image, [])
        last = runs[-1] if runs and runs[-1].tag == target.tag else None
        view = prepared.views.get(g.image)
        current, decision = chosen.get(g.image, (target.tag, None))
        candidates: dict[str, Candidate] = {}
        sel = decision.gates if decision is not None else ()
        promo = view.gates if view is not None else ()
        for v in decision.verdicts if decision is not None else ():
            gate = v.rejection.gate if v.rejection is not None else None
            verdicts = v.by_gate(sel) + passed(promo) if gate else passed(sel + promo)
            candidates[v.tag] = Candidate(v.tag, v.accepted, gate, v.reason, None, verdicts)
        for tag, said in (view.blocked if view is not None else {}).items():
            assert view is not None
            by_name = {r.gate: r for r in said}
            verdicts = view.judged.get(tag, ()) + tuple((n, by_name.get(n)) for n in promo)
            first = next((r for _, r in verdicts if r is not None), said[0])
            digest = view.digests.get(tag)
            candidates[tag] = Candidate(tag, False, first.gate, first.reason, digest, verdicts)
        refused = plan.refused.get(g.image, {})
        for tag, rejection in refused.items():
            digest = view.digests.get(tag) if view is not None else None
            verdicts = (*passed(sel + promo), (rejection.gate, rejection))
            candidates[tag] = Candidate(
                tag, False, rejection.gate, rejection.reason, digest, verdicts
            )
        choice = decision.tag if decision is not None else None
        choice = choice if choice not in (None, current, target.tag) else None
        choice, waiting = approval(policy.publish.mode, pull_request, g.image, g.repository, choice)
        out.append(
            ImageRecord(
                environment=loaded.name,
                image=g.image,
                repository=g.repository,
                upstream=policy.promote.from_ if policy.promote else None,
                running=Running(
                    tag=target.tag,
                    digest=target.digest or (last.digest if last else None),
                    since=last.start if last else None,
                    commit=last.commit if last else None,
                    manual=last.manual if last else None,
                ),
                candidates=tuple(candidates.values()),
                choice=choice,
                # a person's operation waiting in the pull request says more than any gate
                waiting=(waiting if waiting is not None and choice is None else None)
                or (view.blocker if view is not None else None)
                or next(iter(refused.values()), None)
                or waiting,
                holds=view.holds if view is not None else (),
                publish=policy.publish.mode,
                commit=commit,
                pull_request=pull_request,
                errors=(
                    *(p for p in plan.problems if p.startswith(mine(g.image))),
                    *((error,) if error else ()),
                ),
                verified=plan.verified.get(g.image) if choice is not None else None,
            )
        )
    return tuple(out)
