"""Promotion's pure core: runs, holds, gates and groups, and the property that a
downstream environment never receives a version its upstream never ran."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from imagebot.core.governing import Ownership, govern
from imagebot.core.policy import EnvironmentPolicy
from imagebot.core.promotion.history import HistoryCommit, Ref, Run, runs_by_image, runs_of
from imagebot.core.promotion.holds import holds_of
from imagebot.core.promotion.views import hold_back_groups, promotion_view
from imagebot.core.rewrite import Target
from imagebot.core.selection import select

REPO = "ghcr.io/acme/app"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
IMAGEBOT = (("Imagebot-Environment", "x"),)


def policy(promote: dict[str, object] | None = None, **image: object) -> EnvironmentPolicy:
    return EnvironmentPolicy.model_validate(
        {
            "environment": "staging" if promote else "dev",
            "repo": {"url": "x"},
            **({"promote": promote} if promote else {}),
            "images": [{"name": "app", "repository": REPO, **image}],
        }
    )


def digest(tag: str, build: int = 0) -> str:
    return "sha256:" + hashlib.sha256(f"{tag}/{build}".encode()).hexdigest()


def commit(
    n: int,
    tag: str,
    *,
    by_imagebot: bool,
    trailers: tuple[tuple[str, str], ...] = (),
    minutes: int | None = None,
    build: int = 0,
) -> HistoryCommit:
    ref = Ref("app.yaml", 3, REPO, None, tag, digest(tag, build))
    return HistoryCommit(
        sha=f"{n:040x}",
        time=T0 + timedelta(minutes=n if minutes is None else minutes),
        author="imagebot" if by_imagebot else "Ann <ann@example.com>",
        trailers=(IMAGEBOT if by_imagebot else ()) + trailers,
        files={"app.yaml": (ref,)},
        snapshot=n == 0,
    )


def test_rollback_by_a_human_holds_the_version_imagebot_set() -> None:
    """imagebot 1.0 -> 1.1, human back to 1.0: 1.1 is held; imagebot moving down holds nothing."""
    image = policy().images[0]
    history = [
        commit(0, "1.0.0", by_imagebot=False),
        commit(1, "1.1.0", by_imagebot=True),
        commit(2, "1.0.0", by_imagebot=False),
    ]
    (hold,) = holds_of(image, history)
    assert (hold.tag, hold.commit) == ("1.1.0", f"{2:040x}")
    downgrade_by_imagebot = [*history[:2], commit(2, "1.0.0", by_imagebot=True)]
    assert holds_of(image, downgrade_by_imagebot) == []
    forward_by_human = [*history[:2], commit(2, "1.2.0", by_imagebot=False)]
    assert holds_of(image, forward_by_human) == []


def test_holds_read_versions_in_selections_order() -> None:
    """A human switching to another variant (1.2.3 -> 1.2.3-alpine) rolls nothing back, as
    selection reads -alpine as a variant, not a prerelease; 1.2.4-alpine -> 1.2.3-alpine does."""
    image = policy().images[0]
    base = [commit(0, "1.2.2", by_imagebot=False), commit(1, "1.2.3", by_imagebot=True)]
    assert holds_of(image, [*base, commit(2, "1.2.3-alpine", by_imagebot=False)]) == []
    alpine = [commit(0, "1.2.2-alpine", by_imagebot=False),
              commit(1, "1.2.4-alpine", by_imagebot=True),
              commit(2, "1.2.3-alpine", by_imagebot=False)]  # fmt: skip
    assert [h.tag for h in holds_of(image, alpine)] == ["1.2.4-alpine"]


def test_hold_ends_with_a_newer_version_a_trailer_or_unhold() -> None:
    """A newer version running, `Imagebot-Lift-Hold: app 1.1.0` or `unhold` lift the hold."""
    image = policy().images[0]
    history = [
        commit(0, "1.0.0", by_imagebot=False),
        commit(1, "1.1.0", by_imagebot=True),
        commit(2, "1.0.0", by_imagebot=False),
    ]
    assert [h.tag for h in holds_of(image, history)] == ["1.1.0"]
    assert holds_of(image, [*history, commit(3, "1.2.0", by_imagebot=True)]) == []
    lift = commit(3, "1.0.0", by_imagebot=False, trailers=(("Imagebot-Lift-Hold", "app 1.1.0"),))
    assert holds_of(image, [*history, lift]) == []
    other = commit(3, "1.0.0", by_imagebot=False, trailers=(("Imagebot-Lift-Hold", "web"),))
    assert [h.tag for h in holds_of(image, [*history, other])] == ["1.1.0"]
    assert holds_of(policy(unhold=["1.1.0"]).images[0], history) == []


def test_runs_know_when_each_version_started_and_stopped() -> None:
    """Replaying history gives each run's start, stop and author."""
    image = policy().images[0]
    runs = runs_of(
        image, [commit(0, "1.0.0", by_imagebot=False), commit(5, "1.1.0", by_imagebot=True)]
    )
    assert [(r.tag, r.start, r.stop, r.by_imagebot) for r in runs] == [
        ("1.0.0", T0, T0 + timedelta(minutes=5), False),
        ("1.1.0", T0 + timedelta(minutes=5), None, True),
    ]


def test_own_rules_narrow_promoted_versions() -> None:
    """Staging with `allow: patch` takes 1.0.1 from dev's history, not 1.1.0."""
    staging = policy({"from": "dev"}, allow="patch")
    dev = policy().images[0]
    history = [
        commit(0, "1.0.0", by_imagebot=False),
        commit(1, "1.0.1", by_imagebot=True),
        commit(2, "1.1.0", by_imagebot=True),
    ]
    view = promotion_view(
        staging.images[0], environment=staging, current="1.0.0", holds=(),
        upstream_runs=runs_of(dev, history), registry_tags={}, now=T0 + timedelta(hours=1),
    )  # fmt: skip
    assert view.chosen == "1.0.1"
    assert view.digests["1.0.1"] == digest("1.0.1")
    assert view.origins["1.0.1"] == f"dev@{1:040x}"


def test_checks_without_a_forge_block_and_say_so() -> None:
    """`checks` with no way to read commit statuses blocks; with statuses it needs success."""
    staging = policy({"from": "dev", "checks": ["ci/deploy"]})
    dev = policy().images[0]
    runs = runs_of(
        dev, [commit(0, "1.0.0", by_imagebot=False), commit(1, "1.1.0", by_imagebot=True)]
    )
    kw = dict(environment=staging, current="1.0.0", upstream_runs=runs, holds=(),
              registry_tags={}, now=T0 + timedelta(hours=1))  # fmt: skip
    blind = promotion_view(staging.images[0], **kw)  # type: ignore[arg-type]
    assert blind.chosen is None, "nothing verified: staging stays where it is"
    assert blind.blocker is not None and blind.blocker.words.startswith(
        "checks: ci/deploy cannot be verified"
    )
    asked: list[tuple[str, str]] = []

    def statuses(env: str, sha: str) -> dict[str, str]:
        asked.append((env, sha))
        return {"ci/deploy": "success" if sha == f"{1:040x}" else "pending"}

    seen = promotion_view(staging.images[0], **kw, statuses=statuses)  # type: ignore[arg-type]
    assert seen.chosen == "1.1.0"
    assert ("dev", f"{1:040x}") in asked


def test_group_moves_together_or_not_at_all() -> None:
    """When one member of a group waits for its soak, the other member does not move."""
    staging = EnvironmentPolicy.model_validate(
        {
            "environment": "staging",
            "repo": {"url": "x"},
            "promote": {"from": "dev", "soak": "1h"},
            "images": [
                {"name": "app", "repository": REPO, "group": "core"},
                {"name": "web", "repository": "ghcr.io/acme/web", "group": "core"},
            ],
        }
    )
    app_runs = runs_of(policy().images[0], [commit(0, "1.0.0", by_imagebot=False),
                                            commit(1, "1.1.0", by_imagebot=True)])  # fmt: skip
    now = T0 + timedelta(minutes=61)
    web_runs = [
        Run("2.0.0", None, T0, now - timedelta(minutes=5), "e" * 40, by_imagebot=True),
        Run("2.1.0", None, now - timedelta(minutes=5), None, "f" * 40, by_imagebot=True),
    ]
    views = {
        image.name: promotion_view(
            image,
            environment=staging,
            current=current,
            upstream_runs=runs,
            holds=(),
            registry_tags={},
            now=now,
        )
        for image, current, runs in (
            (staging.images[0], "1.0.0", app_runs),
            (staging.images[1], "2.0.0", web_runs),
        )
    }
    assert views["app"].chosen == "1.1.0" and views["web"].waiting
    held = hold_back_groups(staging, views)
    assert held["app"].chosen is None and held["app"].tags == ()
    waits, blocked = held["app"].blocker, views["web"].blocker
    assert waits is not None and blocked is not None
    assert waits.words == f"group: core waits for web ({blocked.words})"


VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "2.0.0-rc.1", "2.0.0"]
Step = tuple[str, int, int]  # (kind, version index, minutes)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["push", "human-dev", "human-staging", "cycle"]),
            st.integers(0, len(VERSIONS) - 1),
            st.integers(0, 90),
        ),
        max_size=30,
    )
)
def test_downstream_never_receives_a_version_upstream_never_ran(steps: list[Step]) -> None:
    """Any sequence of pushes, human commits and cycles: every version imagebot gives staging
    (tag and digest) is one dev ran, and never one a human rolled staging back from."""
    dev_policy = policy(range=">=1.0.0", prerelease=True)
    staging = policy({"from": "dev", "soak": "30m"})
    dev_image, image = dev_policy.images[0], staging.images[0]
    registry = {"1.0.0"}
    n = 0
    now = T0
    dev = [commit(n, "1.0.0", by_imagebot=False, minutes=0)]
    stage = [commit(n, "1.0.0", by_imagebot=False, minutes=0)]
    dev_ran = {("1.0.0", digest("1.0.0"))}
    held: set[str] = set()

    def add(history: list[HistoryCommit], tag: str, by_imagebot: bool) -> None:
        nonlocal n
        n += 1
        history.append(commit(n, tag, by_imagebot=by_imagebot,
                              minutes=int((now - T0).total_seconds() // 60)))  # fmt: skip

    def version(tag: str) -> tuple[int, ...]:
        return (*(int(x) for x in tag.split("-")[0].split(".")), 0 if "-" in tag else 1)

    for kind, index, minutes in steps:
        now += timedelta(minutes=minutes)
        tag = VERSIONS[index]
        if kind == "push":
            registry.add(tag)
        elif kind == "human-dev":
            add(dev, tag, False)
            dev_ran.add((tag, digest(tag)))
        elif kind == "human-staging":
            before = runs_of(image, stage)[-1]
            if before.by_imagebot and version(tag) < version(str(before.tag)):
                held.add(str(before.tag))
            held -= {h for h in held if version(tag) >= version(h)}
            add(stage, tag, False)
        else:
            current = runs_of(dev_image, dev)[-1].tag
            chosen = select(sorted(registry), dev_image.rule(), current=current).tag
            if chosen and chosen != current:
                add(dev, chosen, True)
                dev_ran.add((chosen, digest(chosen)))
            running = runs_of(image, stage)[-1].tag
            view = promotion_view(
                image, environment=staging, current=running,
                upstream_runs=runs_of(dev_image, dev), holds=holds_of(image, stage),
                registry_tags={}, now=now,
            )  # fmt: skip
            if view.chosen and view.chosen != running:
                promoted = (view.chosen, view.digests.get(view.chosen))
                assert promoted in dev_ran, (promoted, dev_ran)
                assert view.chosen not in held, (view.chosen, held)
                add(stage, view.chosen, True)
                held -= {h for h in held if version(view.chosen) >= version(h)}


def test_version_rolled_back_upstream_is_not_promoted() -> None:
    """dev ran 1.1.0 for hours, then a human rolled dev back: staging does not take 1.1.0."""
    staging = policy({"from": "dev", "soak": "1h"})
    dev = policy().images[0]
    history = [
        commit(0, "1.0.0", by_imagebot=False),
        commit(1, "1.1.0", by_imagebot=True),
        commit(300, "1.0.0", by_imagebot=False),
    ]
    view = promotion_view(
        staging.images[0], environment=staging, current="1.0.0", holds=(),
        upstream_runs=runs_of(dev, history), upstream_holds=holds_of(dev, history),
        registry_tags={}, now=T0 + timedelta(hours=6),
    )  # fmt: skip
    assert view.chosen == "1.0.0"
    assert view.blocker is not None
    assert view.blocker.words.startswith("hold: in dev: 1.1.0 was rolled back by Ann")


def test_running_version_held_upstream_is_not_reported_as_waiting() -> None:
    """prod already runs 1.1.0, which staging later rolled back: nothing waits in prod."""
    prod = policy({"from": "staging"})
    staging = policy().images[0]
    history = [
        commit(0, "1.0.0", by_imagebot=False),
        commit(1, "1.1.0", by_imagebot=True),
        commit(9, "1.0.0", by_imagebot=False),
    ]
    view = promotion_view(
        prod.images[0], environment=prod, current="1.1.0", holds=(),
        upstream_runs=runs_of(staging, history), upstream_holds=holds_of(staging, history),
        registry_tags={}, now=T0 + timedelta(hours=1),
    )  # fmt: skip
    assert view.chosen is None
    assert view.blocker is None and not view.waiting


def test_history_replay_owns_references_by_the_planners_rule() -> None:
    """Runs are replayed under the entry that governs each reference in the plan: a Flux
    marker naming the entry (``ns:app``), a pattern entry per repository, the defaults."""
    env = EnvironmentPolicy.model_validate(
        {
            "environment": "dev",
            "repo": {"url": "x"},
            "defaults": {"range": "^1"},
            "images": [
                {"name": "app", "repository": REPO},
                {"name": "tools", "repository": "ghcr.io/tools/*"},
            ],
        }
    )
    refs = {
        "a.yaml": (Ref("a.yaml", 1, "docker.io/old/app", "flux-system:app", "1.0.0", None),),
        "t.yaml": (Ref("t.yaml", 1, "ghcr.io/tools/lint", None, "2.0.0", None),),
        "r.yaml": (Ref("r.yaml", 1, "docker.io/library/redis", None, "7.0.0", None),),
    }
    history = [HistoryCommit(f"{0:040x}", T0, "Ann", (), refs, snapshot=True)]
    targets = {path: [_target(r) for r in found] for path, found in refs.items()}
    planned = {g.image for g in govern(env, targets).groups}
    runs = runs_by_image(Ownership(env.images, env.defaults), history)
    assert set(runs) == planned == {"app", "ghcr.io/tools/lint", "docker.io/library/redis"}
    assert runs["app"][0].tag == "1.0.0"


def _target(ref: Ref) -> Target:
    return Target(
        source=ref.file,
        line=ref.line,
        kind="workload",
        field="image",
        repository=ref.repository,
        policy=ref.policy,
        tag=ref.tag,
        digest=ref.digest,
    )
