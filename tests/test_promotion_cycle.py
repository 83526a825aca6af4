"""Promotion end to end: a real registry, a real git remote, cycles at an injected time."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from imagebot.cache import Cache
from imagebot.config import load_policies
from imagebot.engine import CycleResult, run_cycle
from imagebot.publisher import Publishers
from imagebot.registry.client import RegistryClient
from tests.support.cli import run_cli
from tests.support.forges import run_forge
from tests.support.gitenv import git, make_remote, push_files, show
from tests.support.registry import Registry, push_image, run_registry

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: {ref}
"""

ENVS = ("dev", "staging", "prod")
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


@dataclass
class Pipeline:
    registry: Registry
    remote: Path
    policies: Path
    cache: Path
    image: str
    digests: dict[str, str]
    now: datetime

    def policy(self, env: str, text: str) -> None:
        (self.policies / f"{env}.yaml").write_text(textwrap.dedent(text).format(p=self))

    def cycle(self, *, publish: bool = True, environ: dict[str, str] | None = None) -> CycleResult:
        """One cycle at ``now``, as `imagebot apply` runs it (``environ``: forge tokens)."""

        async def run() -> CycleResult:
            policies = load_policies(self.policies)
            cache = Cache(self.cache / "tags.sqlite")
            try:
                async with (
                    RegistryClient(cache=cache) as client,
                    Publishers(environ=environ or {}) as publishers,
                ):
                    return await run_cycle(
                        policies.environments,
                        registry=client,
                        repos_dir=self.cache / "repos",
                        publish=publish,
                        clock=lambda: self.now,
                        problems=policies.problems,
                        publishers=publishers,
                    )
            finally:
                cache.close()

        self.cache.mkdir(parents=True, exist_ok=True)
        return anyio.run(run)

    def running(self, env: str) -> str:
        """The image reference the environment's file holds (tag, or tag@digest)."""
        text = show(self.remote, f"envs/{env}/app.yaml").decode()
        return text.split(f"image: {self.image}:", 1)[1].split()[0]

    def human_sets(self, env: str, ref: str, *, message: str = "human rollback") -> str:
        data = MANIFEST.format(ref=f"{self.image}:{ref}").encode()
        return push_files(
            self.remote, {f"envs/{env}/app.yaml": data}, message=message, when=self.now
        )

    def status(self) -> dict[str, dict[str, object]]:
        """`imagebot status -o json` at ``now``, by environment: the app's row."""
        result = run_cli(
            "status", "-o", "json", "--now", self.now.isoformat(),
            "--policies", str(self.policies), "--cache-dir", str(self.cache / "cli"),
        )  # fmt: skip
        doc = json.loads(result.stdout)
        return {e["environment"]: e["images"][0] for e in doc["environments"]}


def last_message(remote: Path, path: str) -> str:
    return git("log", "-1", "--format=%B", "main", "--", path, cwd=remote)


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    with run_registry(tmp_path / "registry") as registry:
        image = f"{registry.host}/acme/app"
        digests = {t: push_image(registry, "acme/app", t) for t in ("1.0.0", "1.1.0")}
        remote = make_remote(
            tmp_path,
            {
                f"envs/{env}/app.yaml": MANIFEST.format(
                    ref=f"{image}:1.0.0@{digests['1.0.0']}"
                ).encode()
                for env in ENVS
            },
            when=START - timedelta(days=30),
        )
        policies = tmp_path / "policies"
        policies.mkdir()
        p = Pipeline(registry, remote, policies, tmp_path / "cache", image, digests, START)
        p.policy(
            "dev",
            """\
            environment: dev
            repo: {{url: {p.remote}, path: envs/dev}}
            images:
              - name: app
                repository: {p.image}
                range: ">=1.0.0"
                prerelease: true
                digest: pin
            """,
        )
        p.policy(
            "staging",
            """\
            environment: staging
            repo: {{url: {p.remote}, path: envs/staging}}
            promote: {{from: dev, soak: 1h}}
            images:
              - name: app
                repository: {p.image}
                digest: pin
            """,
        )
        p.policy(
            "prod",
            """\
            environment: prod
            repo: {{url: {p.remote}, path: envs/prod}}
            promote: {{from: staging}}
            images:
              - name: app
                repository: {p.image}
                digest: pin
            """,
        )
        yield p


def commit_of(remote: Path, path: str) -> str:
    """The last commit that touched ``path``."""
    return git("log", "-1", "--format=%H", "main", "--", path, cwd=remote).strip()


def test_staging_waits_for_soak_then_gets_the_digest_dev_ran(pipe: Pipeline) -> None:
    """dev takes the new tag at once; staging waits out the soak (status says how long),
    then gets the digest dev ran, not the one the tag points at now; prod follows at once."""
    d10, d11 = pipe.digests["1.0.0"], pipe.digests["1.1.0"]
    assert pipe.cycle().ok
    assert pipe.running("dev") == f"1.1.0@{d11}"
    assert pipe.running("staging") == f"1.0.0@{d10}"

    pipe.now += timedelta(minutes=20)
    status = pipe.status()
    assert status["staging"]["waiting_for"] == (
        "soak: 1.1.0 has run in dev for 20m of 1h (40m left)"
    )
    assert status["staging"]["candidate"] is None
    assert status["staging"]["running"] == {"tag": "1.0.0", "digest": d10}
    assert status["dev"]["since"]["commit"] == commit_of(pipe.remote, "envs/dev")
    assert status["dev"]["since"]["time"] == START.isoformat()
    assert status["prod"]["waiting_for"] is None

    dev_ran = commit_of(pipe.remote, "envs/dev")
    moved = push_image(pipe.registry, "acme/app", "1.1.0", annotations={"rebuilt": "yes"})
    assert moved != d11
    pipe.now += timedelta(minutes=41)
    result = pipe.cycle()
    assert result.ok, result
    assert pipe.running("dev") == f"1.1.0@{moved}", "dev follows the moved tag"
    assert pipe.running("staging") == f"1.1.0@{d11}", "staging gets what dev ran for an hour"
    assert pipe.running("prod") == f"1.1.0@{d11}", "prod has no soak: same cycle"
    message = last_message(pipe.remote, "envs/staging")
    assert f"Imagebot-Promoted-From: dev@{dev_ran}" in message
    assert f"Imagebot-Digest: {d11}" in message
    assert "Imagebot-Environment: staging" in message
    staging_commit = commit_of(pipe.remote, "envs/staging")
    assert f"Imagebot-Promoted-From: staging@{staging_commit}" in last_message(
        pipe.remote, "envs/prod"
    )


def test_human_rollback_holds_until_a_newer_version(pipe: Pipeline) -> None:
    """A human moving staging back to 1.0.0 holds 1.1.0 there across restarts and a deleted
    cache while dev keeps 1.1.0; a newer tag then flows through all three."""
    d10 = pipe.digests["1.0.0"]
    pipe.cycle()
    pipe.now += timedelta(hours=2)
    pipe.cycle()
    assert pipe.running("staging").startswith("1.1.0@")
    pipe.now += timedelta(minutes=5)
    rollback = pipe.human_sets("staging", f"1.0.0@{d10}")
    for _ in range(2):
        pipe.now += timedelta(hours=2)
        assert pipe.cycle().ok
        assert pipe.running("staging") == f"1.0.0@{d10}"
        assert pipe.running("dev").startswith("1.1.0@")
        shutil.rmtree(pipe.cache)  # the hold lives in git, not in the cache
    waiting = str(pipe.status()["staging"]["waiting_for"])
    assert waiting.startswith(
        f"hold: 1.1.0 was rolled back by Test Human <human@example.com> in {rollback[:12]}"
    ), waiting

    d12 = push_image(pipe.registry, "acme/app", "1.2.0")
    pipe.cycle()
    assert pipe.running("dev") == f"1.2.0@{d12}"
    assert pipe.running("staging") == f"1.0.0@{d10}", "1.2.0 still soaks"
    pipe.now += timedelta(hours=1)
    assert pipe.cycle().ok
    assert pipe.running("staging") == f"1.2.0@{d12}"
    assert pipe.running("prod") == f"1.2.0@{d12}"


def test_lift_hold_trailer_lets_the_version_through_again(pipe: Pipeline) -> None:
    """A later commit with `Imagebot-Lift-Hold: app 1.1.0` lifts the hold: 1.1.0 is taken."""
    d10 = pipe.digests["1.0.0"]
    pipe.cycle()
    pipe.now += timedelta(hours=2)
    pipe.cycle()
    pipe.human_sets("staging", f"1.0.0@{d10}")
    pipe.now += timedelta(hours=1)
    pipe.cycle()
    assert pipe.running("staging") == f"1.0.0@{d10}"
    pipe.human_sets(
        "staging",
        f"1.0.0@{d10}  # checked: 1.1.0 is fine",
        message="lift the hold\n\nImagebot-Lift-Hold: app 1.1.0",
    )
    pipe.cycle()
    assert pipe.running("staging") == f"1.1.0@{pipe.digests['1.1.0']}"


def test_window_closed_on_friday_evening_opens_on_monday(pipe: Pipeline) -> None:
    """Inside "Mon-Thu 09:00-16:00 Europe/Berlin", Friday 18:00 waits; across the DST change,
    Monday 08:59 local still waits and 09:00 local (07:00 UTC) promotes."""
    pipe.policy(
        "staging",
        """\
        environment: staging
        repo: {{url: {p.remote}, path: envs/staging}}
        promote: {{from: dev, windows: ["Mon-Thu 09:00-16:00 Europe/Berlin"]}}
        images:
          - name: app
            repository: {p.image}
            digest: pin
        """,
    )
    pipe.now = datetime(2026, 3, 27, 17, 0, tzinfo=UTC)  # Friday, 18:00 CET
    pipe.cycle()
    assert pipe.running("dev").startswith("1.1.0@")
    assert pipe.running("staging").startswith("1.0.0@")
    assert pipe.status()["staging"]["waiting_for"] == (
        "window: outside the windows; next opens Mon 2026-03-30 09:00 CEST"
    )
    pipe.now = datetime(2026, 3, 30, 6, 59, tzinfo=UTC)  # Monday 08:59 CEST
    pipe.cycle()
    assert pipe.running("staging").startswith("1.0.0@")
    pipe.now = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    pipe.cycle()
    assert pipe.running("staging").startswith("1.1.0@")


def test_version_dev_ran_for_a_week_is_promoted_past_a_refused_release_candidate(
    pipe: Pipeline,
) -> None:
    """dev ran 1.1.0 for a week and has moved to 2.0.0-rc.1, which staging refuses
    (no prereleases): staging takes 1.1.0 with the digest dev ran."""
    pipe.policy(
        "staging",
        """\
        environment: staging
        repo: {{url: {p.remote}, path: envs/staging}}
        promote: {{from: dev, soak: 3d}}
        images:
          - name: app
            repository: {p.image}
            digest: pin
        """,
    )
    pipe.cycle()
    pipe.now += timedelta(days=7)
    push_image(pipe.registry, "acme/app", "2.0.0-rc.1")
    assert pipe.cycle().ok
    assert pipe.running("dev").startswith("2.0.0-rc.1@")
    assert pipe.running("staging") == f"1.1.0@{pipe.digests['1.1.0']}"


def states(remote: Path) -> list[dict[str, str]]:
    """Every environment's image reference after each commit on main, oldest first."""
    out = []
    for sha in git("rev-list", "--reverse", "main", cwd=remote).split():
        row = {}
        for env in ENVS:
            text = subprocess.run(
                ["git", "show", f"{sha}:envs/{env}/app.yaml"],
                cwd=remote, check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            row[env] = text.split("image: ", 1)[1].split()[0]
        out.append(row)
    return out


def test_apply_brings_dev_then_staging_then_prod_never_ahead_of_upstream(
    pipe: Pipeline,
) -> None:
    """With `publish: commit` everywhere, `imagebot apply` brings dev, staging and prod to a
    new tag, and at no commit does an environment hold a version its upstream never ran."""
    pipe.policy(
        "staging",
        """\
        environment: staging
        repo: {{url: {p.remote}, path: envs/staging}}
        promote: {{from: dev}}
        images:
          - name: app
            repository: {p.image}
            digest: pin
        """,
    )

    def apply() -> None:
        result = run_cli(
            "apply", "--now", pipe.now.isoformat(), "--policies", str(pipe.policies),
            "--cache-dir", str(pipe.cache),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    apply()
    d11 = pipe.digests["1.1.0"]
    assert {env: pipe.running(env) for env in ENVS} == dict.fromkeys(ENVS, f"1.1.0@{d11}")
    d12 = push_image(pipe.registry, "acme/app", "1.2.0")
    pipe.now += timedelta(minutes=5)
    apply()
    assert {env: pipe.running(env) for env in ENVS} == dict.fromkeys(ENVS, f"1.2.0@{d12}")
    ran = {env: set() for env in ENVS}
    for row in states(pipe.remote):
        for env in ENVS:
            ran[env].add(row[env])
        assert row["staging"] in ran["dev"], row
        assert row["prod"] in ran["staging"], row
    assert len(states(pipe.remote)) == 7, "one commit per environment per version"


def test_status_text_is_a_table(pipe: Pipeline) -> None:
    """`imagebot status` prints one row per environment and image with the blocking gate."""
    pipe.cycle()
    result = run_cli(
        "status", "--now", (pipe.now + timedelta(minutes=15)).isoformat(),
        "--policies", str(pipe.policies), "--cache-dir", str(pipe.cache / "cli"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ENVIRONMENT", "IMAGE", "RUNNING", "SINCE", "NEXT", "STATE"]
    staging = next(line for line in lines if line.startswith("staging"))
    assert "staging (from dev)" in staging
    assert staging.endswith("waiting: soak: 1.1.0 has run in dev for 15m of 1h (45m left)")
    assert staging.index("1.0.0@sha256:") == lines[0].index("RUNNING")


def test_status_and_explain_give_every_gate_verdict_selection_then_promotion(
    pipe: Pipeline,
) -> None:
    """Each candidate in `status -o json` carries every gate's verdict in chain order — the
    selection gates, then the promotion gates — and a version two gates refuse names both;
    `plan --explain` gives each tag every selection gate's verdict."""
    push_image(pipe.registry, "acme/app", "2.0.0-rc.1")
    assert pipe.cycle().ok
    assert pipe.running("dev").startswith("2.0.0-rc.1@"), "dev allows prereleases"
    pipe.now += timedelta(minutes=20)
    candidates = {c["tag"]: c for c in pipe.status()["staging"]["candidates"]}

    def verdicts(tag: str) -> list[tuple[str, bool]]:
        return [(v["gate"], v["passed"]) for v in candidates[tag]["verdicts"]]

    rc = verdicts("2.0.0-rc.1")
    promotion = [("hold", True), ("soak", False), ("checks", True), ("window", True)]
    assert rc[-4:] == promotion, "promotion gates follow the selection gates"
    assert ("prerelease", False) in rc[:-4] and ("read", True) in rc[:-4]
    assert [g for g, ok in rc if not ok] == ["prerelease", "soak"], "two gates say no"
    assert candidates["2.0.0-rc.1"]["gate"] == "prerelease", "the first in chain order"
    assert all(ok for _, ok in verdicts("1.0.0")), "1.0.0 ran in dev for 30 days"
    assert verdicts("1.0.0")[-4:] == [(g, True) for g, _ in promotion]

    result = run_cli(
        "plan", "--explain", "-o", "json", "--now", pipe.now.isoformat(),
        "--policies", str(pipe.policies), "--cache-dir", str(pipe.cache / "cli"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    envs = {e["environment"]: e for e in json.loads(result.stdout)["environments"]}
    (dev,) = envs["dev"]["decisions"]
    explained = {v["tag"]: v["gates"] for v in dev["verdicts"]}
    said_no = [g["gate"] for g in explained["1.0.0"] if not g["passed"]]
    assert said_no == ["downgrade"], "1.0.0 is below the running 2.0.0-rc.1"
    assert all(g["passed"] for g in explained["2.0.0-rc.1"])


def test_rollback_in_an_environment_without_promotion_is_held_too(pipe: Pipeline) -> None:
    """dev follows the registry, yet after a human moves it back from 1.1.0, imagebot does
    not propose 1.1.0 again; `plan` says why; a newer tag moves dev on."""
    d10 = pipe.digests["1.0.0"]
    pipe.cycle()
    pipe.now += timedelta(minutes=10)
    pipe.human_sets("dev", f"1.0.0@{d10}")
    pipe.now += timedelta(minutes=10)
    result = pipe.cycle()
    assert pipe.running("dev") == f"1.0.0@{d10}"
    (dev,) = [r for r in result.environments if r.plan.environment == "dev"]
    assert dev.commit is None and not dev.plan.changes
    (record,) = dev.images
    assert record.running.tag == "1.0.0" and record.choice is None
    assert str(record.blocker).startswith("hold: 1.1.0 was rolled back by Test Human")
    d12 = push_image(pipe.registry, "acme/app", "1.2.0")
    pipe.cycle()
    assert pipe.running("dev") == f"1.2.0@{d12}"


def test_one_promoted_environment_alone_still_reads_its_upstream(pipe: Pipeline) -> None:
    """`apply -e staging` promotes from dev's history although dev itself is not run."""
    pipe.human_sets("dev", f"1.1.0@{pipe.digests['1.1.0']}", message="dev by hand")
    pipe.now += timedelta(hours=2)
    result = run_cli(
        "apply", "-e", "staging", "--now", pipe.now.isoformat(),
        "--policies", str(pipe.policies), "--cache-dir", str(pipe.cache),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert pipe.running("staging") == f"1.1.0@{pipe.digests['1.1.0']}"
    assert pipe.running("prod") == f"1.0.0@{pipe.digests['1.0.0']}", "prod was not asked for"


def test_checks_gate_reads_statuses_of_the_upstream_commit(pipe: Pipeline) -> None:
    """With `checks: [deploy/dev]`, staging waits until dev's forge (a Gitea API on loopback)
    reports success on the dev commit that put the version there."""
    with run_forge("gitea", pipe.remote, token="t0ken") as forge:
        dev = (pipe.policies / "dev.yaml").read_text()
        (pipe.policies / "dev.yaml").write_text(
            dev
            + "publish:\n  mode: commit\n"
            + f"  forge: {{type: gitea, url: '{forge.url}', project: acme/environments,"
            + " token_env: FORGE_TOKEN}\n"
        )
        pipe.policy(
            "staging",
            """\
            environment: staging
            repo: {{url: {p.remote}, path: envs/staging}}
            promote: {{from: dev, checks: [deploy/dev]}}
            images:
              - name: app
                repository: {p.image}
                digest: pin
            """,
        )
        pipe.cycle(environ={"FORGE_TOKEN": "t0ken"})
        dev_commit = commit_of(pipe.remote, "envs/dev")
        assert pipe.running("staging").startswith("1.0.0@")
        forge.statuses[dev_commit] = {"deploy/dev": "pending", "lint": "success"}
        result = pipe.cycle(environ={"FORGE_TOKEN": "t0ken"})
        staging = next(r for r in result.environments if r.plan.environment == "staging")
        (row,) = staging.images
        assert row.blocker == f"checks: on dev@{dev_commit[:12]}: deploy/dev=pending"
        assert any("/statuses" in r.path and dev_commit in r.path for r in forge.requests)
        forge.statuses[dev_commit] = {"deploy/dev": "success", "lint": "failure"}
        pipe.cycle(environ={"FORGE_TOKEN": "t0ken"})
        assert pipe.running("staging").startswith("1.1.0@")


def test_checks_without_a_forge_wait_and_say_why(pipe: Pipeline) -> None:
    """`checks` when dev's policy names no forge: staging waits, and says it cannot verify."""
    pipe.policy(
        "staging",
        """\
        environment: staging
        repo: {{url: {p.remote}, path: envs/staging}}
        promote: {{from: dev, checks: [deploy/dev]}}
        images:
          - name: app
            repository: {p.image}
            digest: pin
        """,
    )
    result = pipe.cycle()
    assert pipe.running("dev").startswith("1.1.0@")
    assert pipe.running("staging").startswith("1.0.0@")
    staging = next(r for r in result.environments if r.plan.environment == "staging")
    (row,) = staging.images
    assert row.blocker is not None
    assert row.blocker.startswith("checks: deploy/dev cannot be verified: no forge API")


def test_image_without_upstream_entry_is_reported_and_the_others_move(pipe: Pipeline) -> None:
    """staging lists an image dev does not have: that image is an error, app still moves."""
    pipe.policy(
        "staging",
        """\
        environment: staging
        repo: {{url: {p.remote}, path: envs/staging}}
        promote: {{from: dev}}
        images:
          - name: app
            repository: {p.image}
            digest: pin
          - name: worker
            repository: {p.image}
            digest: pin
        """,
    )
    result = pipe.cycle()
    assert not result.ok
    staging_file = pipe.policies / "staging.yaml"
    assert (
        f"{staging_file}:8: images[1]: image 'worker' has no entry of the same name in"
        " upstream environment 'dev'"
    ) in result.problems[0]
    assert pipe.running("staging").startswith("1.1.0@")


def test_group_members_move_together_or_not_at_all(pipe: Pipeline) -> None:
    """app soaked but web, in the same group, still soaks: neither moves; then both do, in
    one commit."""
    web = f"{pipe.registry.host}/acme/web"
    web1 = push_image(pipe.registry, "acme/web", "1.0.0")
    push_files(
        pipe.remote,
        {
            f"envs/{env}/web.yaml": MANIFEST.format(ref=f"{web}:1.0.0@{web1}").encode()
            for env in ("dev", "staging")
        },
        message="web",
        when=pipe.now - timedelta(days=1),
    )
    entries = "".join(
        f"  - name: {name}\n    repository: {repo}\n    digest: pin\n    group: core\n"
        for name, repo in (("app", pipe.image), ("web", web))
    )
    (pipe.policies / "dev.yaml").write_text(
        f"environment: dev\nrepo: {{url: {pipe.remote}, path: envs/dev}}\nimages:\n{entries}"
    )
    (pipe.policies / "staging.yaml").write_text(
        f"environment: staging\nrepo: {{url: {pipe.remote}, path: envs/staging}}\n"
        f"promote: {{from: dev, soak: 1h}}\nimages:\n{entries}"
    )
    (pipe.policies / "prod.yaml").unlink()
    pipe.cycle()  # dev: app 1.1.0 now
    pipe.now += timedelta(minutes=30)
    web2 = push_image(pipe.registry, "acme/web", "1.1.0")
    pipe.cycle()  # dev: web 1.1.0, 30 minutes after app
    pipe.now += timedelta(minutes=31)
    result = pipe.cycle()
    assert pipe.running("staging").startswith("1.0.0@"), "app waits for web"
    staging = next(r for r in result.environments if r.plan.environment == "staging")
    rows = {row.image: row.blocker for row in staging.images}
    assert rows["web"] == "soak: 1.1.0 has run in dev for 31m of 1h (29m left)"
    assert rows["app"] == f"group: core waits for web ({rows['web']})"
    before = commit_of(pipe.remote, "envs/staging")
    pipe.now += timedelta(minutes=30)
    assert pipe.cycle().ok
    assert pipe.running("staging") == f"1.1.0@{pipe.digests['1.1.0']}"
    assert f"{web}:1.1.0@{web2}".encode() in show(pipe.remote, "envs/staging/web.yaml")
    history = git("rev-list", f"{before}..main", "--", "envs/staging", cwd=pipe.remote).split()
    assert len(history) == 1, "both images in one commit"


def test_production_in_pull_request_mode_gets_a_pr_that_a_newer_candidate_replaces(
    pipe: Pipeline,
) -> None:
    """prod publishes by pull request: the promotion is a PR carrying the trailers; a newer
    candidate updates that PR in place; merging it completes the promotion."""
    with run_forge("gitea", pipe.remote, token="t0ken") as forge:
        prod = (pipe.policies / "prod.yaml").read_text()
        (pipe.policies / "prod.yaml").write_text(
            prod
            + "publish:\n  mode: pull-request\n"
            + f"  forge: {{type: gitea, url: '{forge.url}', project: acme/environments,"
            + " token_env: FORGE_TOKEN}\n"
        )
        pipe.policy(
            "staging",
            """\
            environment: staging
            repo: {{url: {p.remote}, path: envs/staging}}
            promote: {{from: dev}}
            images:
              - name: app
                repository: {p.image}
                digest: pin
            """,
        )
        tokens = {"FORGE_TOKEN": "t0ken"}
        first = pipe.cycle(environ=tokens)
        assert first.ok
        (waiting,) = next(r for r in first.environments if r.plan.environment == "prod").images
        assert (waiting.choice, waiting.blocker) == (
            "1.1.0",
            "approval: the environment's pull request must be merged",
        )
        assert pipe.running("staging").startswith("1.1.0@")
        assert pipe.running("prod").startswith("1.0.0@"), "prod waits for the merge"
        (pr,) = forge.open_pulls()
        staging_commit = commit_of(pipe.remote, "envs/staging")
        head = git("log", "-1", "--format=%B", f"refs/heads/{pr.head}", cwd=pipe.remote)
        assert f"Imagebot-Promoted-From: staging@{staging_commit}" in head
        assert "Imagebot-To: 1.1.0@" in head

        d12 = push_image(pipe.registry, "acme/app", "1.2.0")
        pipe.now += timedelta(minutes=5)
        assert pipe.cycle(environ=tokens).ok
        (again,) = forge.open_pulls()
        assert again.number == pr.number, "the pending promotion is replaced in place"
        assert f"1.2.0@{d12}".encode() in show(pipe.remote, "envs/prod/app.yaml", ref=pr.head)

        forge.merge_by_human(pr.number)
        pipe.now += timedelta(minutes=5)
        result = pipe.cycle(environ=tokens)
        assert result.ok
        assert pipe.running("prod") == f"1.2.0@{d12}"
        assert forge.open_pulls() == []
        prod_row = next(r for r in result.environments if r.plan.environment == "prod").images
        assert prod_row[0].running.tag == "1.2.0" and prod_row[0].blocker is None


def test_a_no_op_apply_prints_one_summary_line_per_environment(pipe: Pipeline) -> None:
    """An apply that changes nothing says per environment how many images are up to date
    and how many wait, by gate; -v adds a line per image with why it stays."""
    assert pipe.cycle().ok  # dev takes 1.1.0; staging waits for the soak
    args = ("--now", (pipe.now + timedelta(minutes=20)).isoformat(),
            "--policies", str(pipe.policies), "--cache-dir", str(pipe.cache / "cli"))  # fmt: skip
    result = run_cli("apply", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "dev: 1 image up to date",
        "staging: 1 waiting: soak (1)",
        "prod: 1 image up to date",
    ]
    lines = run_cli("apply", "-v", *args).stdout.splitlines()
    assert (
        "staging: app stays at 1.0.0: waiting: soak: 1.1.0 has run in dev for 20m of 1h (40m left)"
    ) in lines, lines
    assert "staging: 1 waiting: soak (1)" in lines


def test_before_anything_has_soaked_the_reason_says_so_in_words(pipe: Pipeline) -> None:
    """Ten minutes after dev first ran 1.0.0, staging (soak 1h) is told that nothing has run
    in dev long enough yet, not that no tag qualifies among 0."""
    when = START - timedelta(days=30) + timedelta(minutes=10)
    result = run_cli(
        "plan", "-v", "--now", when.isoformat(),
        "--policies", str(pipe.policies), "--cache-dir", str(pipe.cache / "cli"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("staging: app stays at")]
    assert line.endswith(": nothing has run in dev long enough yet (soak 1h)"), line
    assert "among 0" not in result.stdout
