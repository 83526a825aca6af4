"""Pull-request mode end to end: a real registry, a real bare git remote, and GitHub, GitLab
and Gitea as local HTTP servers speaking their documented APIs."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import structlog.testing

from imagebot.config import load_policies
from imagebot.daemon.metrics import Metrics
from imagebot.engine import CycleResult, run_cycle
from imagebot.forge import CommitStatus, connect_forge
from imagebot.publisher import Publishers
from imagebot.publisher.proposal import HUMAN_COMMIT_MARKER
from imagebot.registry.client import RegistryClient
from imagebot.registry.manifests import ImageInfo
from tests.support.cli import run_cli
from tests.support.clock import FakeClock
from tests.support.forges import ForgeServer, run_forge
from tests.support.gitenv import commits, git, make_remote, message, push_files, show
from tests.support.registry import Registry, push_image

TOKEN = "forge-s3cret-token-4242"
KINDS = ["github", "gitlab", "gitea"]
APP = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          image: {image}:1.0.0  # staging app
"""


@dataclass
class World:
    kind: str
    registry: Registry
    repository: str  # in the registry, e.g. acme/app-1a2b
    image: str  # host/repository
    remote: Path
    policies: Path
    cache: Path
    forge: ForgeServer
    clock: FakeClock = field(default_factory=FakeClock)
    logs: list[dict[str, Any]] = field(default_factory=list)

    def push_tag(self, tag: str) -> str:
        return push_image(
            self.registry,
            self.repository,
            tag,
            annotations={
                "org.opencontainers.image.source": "https://github.com/acme/app",
                "org.opencontainers.image.revision": f"rev-{tag}",
            },
        )

    def cycle(
        self, *, publish: bool = True, wrap: Callable[[RegistryClient], Any] = lambda c: c
    ) -> CycleResult:
        async def run() -> CycleResult:
            policies = load_policies(self.policies)
            async with (
                RegistryClient() as client,
                Publishers(
                    environ={"FORGE_TOKEN": TOKEN}, sleep=self.clock.sleep, clock=self.clock.now
                ) as publishers,
            ):
                return await run_cycle(
                    policies.environments,
                    registry=wrap(client),
                    repos_dir=self.cache,
                    publish=publish,
                    publishers=publishers,
                )

        with structlog.testing.capture_logs() as captured:
            result = anyio.run(run)
        self.logs.extend(captured)
        return result

    def env(self, result: CycleResult, name: str = "staging") -> Any:
        return next(r for r in result.environments if r.plan.environment == name)

    def branch(self) -> str | None:
        return self.forge.branch_sha("imagebot/staging")

    def cli(self, *args: str) -> tuple[int, str]:
        result = run_cli(
            *args, "--policies", str(self.policies), "--cache-dir", str(self.cache),
            env={"FORGE_TOKEN": TOKEN},
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr


def policy_text(world_remote: Path, image: str, kind: str, url: str) -> str:
    return textwrap.dedent(
        f"""\
        environment: staging
        repo: {{url: "file://{world_remote}", branch: main, path: envs/staging}}
        publish:
          mode: pull-request
          forge:
            type: {kind}
            url: {url}
            project: acme/environments
            token_env: FORGE_TOKEN
          labels: [imagebot]
          reviewers: [alice]
          automerge: true
        images:
          - name: app
            repository: {image}
            range: "^1.0"
        """
    )


@pytest.fixture(params=KINDS)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, shared_registry: Registry
) -> Iterator[World]:
    kind: str = request.param
    repository = f"acme/app-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    image = f"{shared_registry.host}/{repository}"
    remote = make_remote(tmp_path, {"envs/staging/app.yaml": APP.format(image=image).encode()})
    with run_forge(kind, remote, token=TOKEN) as forge:
        forge.max_page = 1  # every list the forge returns is paginated, one item a page
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "staging.yaml").write_text(policy_text(remote, image, kind, forge.url))
        world = World(kind, shared_registry, repository, image, remote, policies,
                      tmp_path / "cache", forge)  # fmt: skip
        world.push_tag("1.0.0")
        world.push_tag("1.1.0")
        yield world
    for event in world.logs:
        assert TOKEN not in repr(event), event


def test_first_pr_then_update_in_place_then_no_writes(world: World) -> None:
    """The first cycle pushes imagebot/staging and opens one PR into main; a newer tag updates
    the same PR and branch; a cycle with nothing new writes nothing to the forge or git."""
    base = commits(world.remote)
    result = world.cycle()
    assert result.ok, result
    assert commits(world.remote) == base, "the base branch is untouched"
    (pr,) = world.forge.pulls.values()
    assert (pr.state, pr.head, pr.base) == ("open", "imagebot/staging", "main")
    assert pr.title == "imagebot(staging): update app 1.0.0 -> 1.1.0"
    assert pr.labels == ["imagebot"] and pr.reviewers == ["alice"] and pr.automerge
    assert "https://github.com/acme/app/compare/rev-1.0.0...rev-1.1.0" in pr.body
    assert f"| `app` ({world.image}) | `1.0.0` | `1.1.0` |" in pr.body
    branch = world.branch()
    assert branch is not None
    assert commits(world.remote, ref=branch)[1:] == base, "one commit on top of the base head"
    assert f"{world.image}:1.1.0".encode() in show(
        world.remote, "envs/staging/app.yaml", ref=branch
    )
    assert "source: https://github.com/acme/app/compare/rev-1.0.0...rev-1.1.0" in message(
        world.remote, ref=branch
    )

    world.push_tag("1.2.0")
    shutil.rmtree(world.cache)  # a restart on a new machine: only the forge and git remain
    result = world.cycle()
    assert result.ok, result
    assert list(world.forge.pulls) == [1], "the same PR, no second one"
    assert pr.title == "imagebot(staging): update app 1.0.0 -> 1.2.0"
    branch = world.branch()
    assert branch is not None and commits(world.remote, ref=branch)[1:] == base
    assert f"{world.image}:1.2.0".encode() in show(
        world.remote, "envs/staging/app.yaml", ref=branch
    )
    assert "updated pull request #1" in (world.env(result).publication or "")

    writes, requests = len(world.forge.writes), len(world.forge.requests)
    result = world.cycle()
    assert result.ok, result
    assert len(world.forge.requests) > requests, "the forge was asked"
    assert len(world.forge.writes) == writes, "but nothing was written"
    assert world.branch() == branch, "and nothing pushed"
    assert world.env(result).commit is None


def test_open_pull_requests_metric_is_read_back_from_the_forge(world: World) -> None:
    """The daemon's open pull requests gauge says what the forge says: 0 before imagebot
    proposes anything, 1 while its PR is open, 0 again once a human has merged it."""
    metrics = Metrics()

    def gauge() -> float | None:
        async def read() -> None:
            async with Publishers(
                environ={"FORGE_TOKEN": TOKEN}, sleep=world.clock.sleep, clock=world.clock.now
            ) as publishers:
                policies = load_policies(world.policies).environments
                await metrics.read_open_pull_requests(policies, publishers)

        anyio.run(read)
        return metrics.registry.get_sample_value(
            "imagebot_open_pull_requests", {"environment": "staging"}
        )

    assert gauge() == 0
    assert world.cycle().ok
    assert gauge() == 1
    world.forge.merge_by_human(1)
    assert gauge() == 0


def test_obsolete_pr_is_closed_and_its_branch_deleted(world: World) -> None:
    """When a human moves the base to the proposed version, the PR is closed with a comment
    and its branch deleted."""
    assert world.cycle().ok
    push_files(
        world.remote,
        {"envs/staging/app.yaml": APP.format(image=world.image).replace("1.0.0", "1.1.0").encode()},
        message="human bump",
    )
    result = world.cycle()
    assert result.ok, result
    pr = world.forge.pulls[1]
    assert pr.state == "closed" and not pr.merged
    assert len(pr.comments) == 1 and "already holds" in pr.comments[0]
    assert world.branch() is None
    writes = len(world.forge.writes)
    assert world.cycle().ok
    assert len(world.forge.writes) == writes and len(world.forge.pulls) == 1


def test_human_commit_gets_one_comment_and_is_never_overwritten(world: World) -> None:
    """A commit a human pushed to imagebot's branch is kept; imagebot comments once, and after
    the PR is merged it proposes newer versions in a new PR."""
    assert world.cycle().ok
    human = _human_commit_on_branch(world)
    world.push_tag("1.2.0")
    for _ in range(2):
        result = world.cycle()
        assert result.ok, result
        assert world.branch() == human
    pr = world.forge.pulls[1]
    assert [c for c in pr.comments if c.startswith(HUMAN_COMMIT_MARKER)] == pr.comments
    assert len(pr.comments) == 1
    assert pr.title.endswith("1.0.0 -> 1.1.0"), "the PR is not rewritten either"

    world.forge.merge_by_human(1)
    result = world.cycle()
    assert result.ok, result
    assert len(world.forge.open_pulls()) == 1 and world.forge.pulls[2].state == "open"
    assert world.forge.pulls[2].title.endswith("1.1.0 -> 1.2.0")


def test_human_push_racing_imagebot_wins(world: World) -> None:
    """A human commit pushed to the branch after imagebot read it and before imagebot pushes
    makes imagebot's leased push fail; imagebot keeps the human commit and comments once."""
    assert world.cycle().ok
    world.push_tag("1.2.0")

    class HumanPushesWhileImagebotWorks:
        """A registry seam: the first image lookup of publishing lets a human push."""

        def __init__(self, inner: RegistryClient) -> None:
            self.inner = inner
            self.human: str | None = None

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def image_info(self, repository: str, tag: str, **kw: Any) -> ImageInfo:
            if self.human is None:
                self.human = _human_commit_on_branch(world)
            return await self.inner.image_info(repository, tag, **kw)

    seam: list[HumanPushesWhileImagebotWorks] = []
    result = world.cycle(wrap=lambda c: seam.append(HumanPushesWhileImagebotWorks(c)) or seam[-1])
    assert result.ok, result
    assert world.branch() == seam[0].human, "the human commit stays"
    (comment,) = world.forge.pulls[1].comments
    assert comment.startswith(HUMAN_COMMIT_MARKER)


def test_closed_unmerged_pr_is_not_proposed_again_until_a_newer_version(world: World) -> None:
    """A PR a human closed without merging is respected: the same versions are not proposed
    again (read back from the forge's closed PRs), a newer one is."""
    assert world.cycle().ok
    world.forge.close_by_human(1)
    code, out = world.cli("plan")
    assert code == 0, out
    assert "staging: would not propose these versions again: pull request #1" in out, out
    writes = len(world.forge.writes)
    for _ in range(2):
        result = world.cycle()
        assert result.ok, result
        assert "closed without merging" in (world.env(result).publication or "")
    assert len(world.forge.writes) == writes and len(world.forge.pulls) == 1

    world.push_tag("1.2.0")
    assert world.cycle().ok
    assert world.forge.pulls[2].state == "open"
    assert world.forge.pulls[2].title.endswith("1.0.0 -> 1.2.0")


def status(world: World) -> tuple[dict[str, Any], str]:
    """`imagebot status` as JSON (the app's record) and as text."""
    done = run_cli(
        "status", "-o", "json", "--policies", str(world.policies), "--cache-dir",
        str(world.cache), env={"FORGE_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (env,) = json.loads(done.stdout)["environments"]
    code, text = world.cli("status")
    assert code == 0, text
    return env["images"][0], text


def test_status_after_a_closed_pr_says_closed_and_not_proposed_again(world: World) -> None:
    """After a human closed imagebot's PR unmerged, `imagebot status` says so — the same
    decision apply acts on — instead of waiting for that PR to be merged."""
    assert world.cycle().ok
    world.forge.close_by_human(1)
    record, text = status(world)
    assert "closed without merging; not proposed again" in record["waiting_for"]
    assert record["candidate"] is None, "nothing moves: the version is not proposed again"
    assert record["gate"] == "declined", "a closed PR waits for no approval"
    assert record["pull_request"]["state"] == "closed"
    assert record["pull_request"]["number"] == 1
    assert record["pull_request"]["holds"] == ["1.1.0"]
    (row,) = [line for line in text.splitlines() if line.startswith("staging")]
    assert "waiting: declined: pull request #1" in row and "closed without merging" in row
    assert "must be merged" not in text
    result = world.cycle()
    (applied,) = world.env(result).images
    assert applied.blocker == f"declined: {record['waiting_for'].split(': ', 1)[1]}"


def test_status_after_a_human_commit_shows_what_the_pr_holds_and_who_owns_it(
    world: World,
) -> None:
    """After a human pushed to imagebot's PR branch, `imagebot status` shows the version the
    PR holds (not a newer one imagebot would propose) and that a human owns the PR."""
    assert world.cycle().ok
    _human_commit_on_branch(world)
    world.push_tag("1.2.0")
    record, text = status(world)
    assert record["candidate"] == "1.1.0", "what the PR holds, not 1.2.0"
    assert "a human owns it" in record["waiting_for"]
    assert record["pull_request"]["state"] == "human-edited"
    assert record["pull_request"]["holds"] == ["1.1.0"]
    assert "#1" in record["waiting_for"]
    (row,) = [line for line in text.splitlines() if line.startswith("staging")]
    assert "1.2.0" not in row and "a human owns it" in row
    accepted = [c["tag"] for c in record["candidates"] if c["accepted"]]
    assert "1.2.0" in accepted, "selection still says what is newest"


def test_status_after_a_merged_pr_says_merged_from_the_closed_list_alone(world: World) -> None:
    """After a human merged imagebot's PR, `imagebot status` says it was merged, with its
    number and URL, read from the one closed-pull-request list it asks the forge for."""
    assert world.cycle().ok
    url = world.env(world.cycle()).pull_request.url
    world.forge.merge_by_human(1)
    before = len(world.forge.requests)
    record, text = status(world)
    asked = world.forge.requests[before:]
    lists = [r for r in asked if r.method == "GET" and r.path.endswith(("pulls", "requests"))]
    assert len(lists) == 2 * 2, "status -o json and status: one open, one closed list each"
    merged = {"number": 1, "url": url, "state": "merged", "holds": ["1.1.0"], "manual": []}
    assert record["pull_request"] == merged
    assert record["running"]["tag"] == "1.1.0" and record["candidate"] is None
    assert record["waiting_for"] is None
    (row,) = [line for line in text.splitlines() if line.startswith("staging")]
    assert "up to date; pull request #1 merged" in row, row


def test_crash_between_push_and_pr_is_completed_next_cycle(world: World) -> None:
    """A branch pushed without its PR (the forge failed after the push) gets its PR on the
    next cycle, without a second push."""
    create = {"github": "POST", "gitlab": "POST", "gitea": "POST"}[world.kind]
    world.forge.fail(create, r"/(pulls|merge_requests)$", 500, {"message": "Server Error"})
    result = world.cycle()
    assert not result.ok
    assert "HTTP 500" in (world.env(result).error or "")
    branch = world.branch()
    assert branch is not None and not world.forge.pulls
    result = world.cycle()
    assert result.ok, result
    assert world.branch() == branch
    assert len(world.forge.open_pulls()) == 1


ERRORS: dict[str, dict[int, Any]] = {
    "github": {
        401: {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
        403: {"message": "Resource not accessible by integration",
              "documentation_url": "https://docs.github.com/rest"},
        404: {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
        409: {"message": "Reference update failed",
              "documentation_url": "https://docs.github.com/rest"},
        422: {"message": "Validation Failed", "errors": [
            {"resource": "PullRequest", "code": "custom",
             "message": "No commits between main and imagebot/staging"}],
            "documentation_url": "https://docs.github.com/rest"},
    },
    "gitlab": {
        401: {"message": "401 Unauthorized"},
        403: {"message": "403 Forbidden"},
        404: {"message": "404 Project Not Found"},
        409: {"message": ["Another open merge request already exists for this source branch: !1"]},
        422: {"message": ["Validation failed: Title can't be blank"]},
    },
    "gitea": {
        401: {"message": "token is required", "url": ""},
        403: {"message": "user should have a permission to write to the target branch", "url": ""},
        404: {"errors": None, "message": "The target couldn't be found.", "url": ""},
        409: {"message": "pull request already exists for these targets", "url": ""},
        422: {"message": "Invalid PullRequest: There are no changes between the head and the base",
              "url": ""},
    },
}  # fmt: skip


@pytest.mark.parametrize("status", [401, 403, 404, 409, 422])
def test_forge_errors_name_forge_project_and_action(world: World, status: int) -> None:
    """Each documented error status becomes an error naming forge, project and action with the
    forge's own message; another environment in the same cycle still publishes."""
    dev = (world.policies / "staging.yaml").read_text().replace("staging", "dev")
    dev = dev[: dev.index("publish:")] + dev[dev.index("images:") :]
    push_files(
        world.remote,
        {"envs/dev/app.yaml": APP.format(image=world.image).encode()},
        message="add dev",
    )
    (world.policies / "dev.yaml").write_text(dev)
    body = ERRORS[world.kind][status]
    world.forge.fail("POST", r"/(pulls|merge_requests)$", status, body)
    result = world.cycle()
    error = world.env(result).error or ""
    assert error.startswith(f"staging: {world.kind} acme/environments: open "), error
    detail = body["message"] if isinstance(body["message"], str) else body["message"][0]
    assert f"({status})" in error and detail in error, error
    if status == 422 and world.kind == "github":
        assert "No commits between main and imagebot/staging" in error
    assert world.env(result, "dev").commit is not None, "the other environment went on"
    assert "source: https://github.com/acme/app/compare/rev-1.0.0...rev-1.1.0" in message(
        world.remote
    ), "commit mode links the source changes too"
    assert TOKEN not in error


def test_secondary_rate_limit_waits_retry_after_then_succeeds(world: World) -> None:
    """A rate-limited request is retried after the wait the forge asks for (GitHub:
    retry-after on a 403; GitLab: RateLimit-Reset on a 429; Gitea: Retry-After on a 429)."""
    now = int(world.clock.now().timestamp())
    faults = {
        "github": (403, {"message": "You have exceeded a secondary rate limit. Please wait a few"
                         " minutes before you try again.",
                         "documentation_url": "https://docs.github.com/rest"},
                   {"retry-after": "7"}),
        "gitlab": (429, "Retry later", {"RateLimit-Reset": str(now + 7),
                                        "RateLimit-Remaining": "0"}),
        "gitea": (429, {"message": "rate limit exceeded", "url": ""}, {"Retry-After": "7"}),
    }  # fmt: skip
    status, body, headers = faults[world.kind]
    world.forge.fail("GET", r"/(pulls|merge_requests)$", status, body, headers=headers)
    result = world.cycle()
    assert result.ok, result
    assert world.clock.sleeps == [7.0]
    assert len(world.forge.open_pulls()) == 1


def test_rate_limit_longer_than_a_cycle_fails_the_environment(world: World) -> None:
    """A rate limit asking for an hour is not slept through: the environment fails this cycle
    with the wait named, and the next cycle succeeds."""
    world.forge.fail(
        "GET", r"/(pulls|merge_requests)$", 429, {"message": "slow down"},
        headers={"Retry-After": "3600"},
    )  # fmt: skip
    result = world.cycle()
    error = world.env(result).error or ""
    assert "rate limited (429): retry after 3600s" in error, error
    assert world.clock.sleeps == []
    assert world.cycle().ok


def test_cli_plan_says_which_pr_then_apply_and_tokens_stay_out_of_output(world: World) -> None:
    """`imagebot plan` names the PR it would open, then the one it would update; a rejected
    token is reported without ever printing it."""
    checked = run_cli("check", "--policies", str(world.policies))
    code, out = checked.returncode, checked.stderr
    assert code == 0, out
    token_line = (
        (world.policies / "staging.yaml")
        .read_text()
        .splitlines()
        .index("    token_env: FORGE_TOKEN")
    )
    assert (
        f"warning: {world.policies / 'staging.yaml'}:{token_line + 1}: publish.forge.token_env:"
        " environment variable FORGE_TOKEN is not set here" in out
    ), out
    checked = run_cli("check", "--policies", str(world.policies), env={"FORGE_TOKEN": TOKEN})
    code, out = checked.returncode, checked.stdout
    assert "warning" not in out + checked.stderr
    assert "staging, 1 image(s), pull requests from imagebot/staging on " + world.kind in out
    code, out = world.cli("plan")
    assert code == 0, out
    assert "staging: would open a pull request imagebot/staging -> main" in out
    code, out = world.cli("apply")
    assert code == 0, out
    assert "staging: opened pull request #1" in out
    world.push_tag("1.2.0")
    code, out = world.cli("plan")
    assert "staging: would update pull request #1" in out, out
    assert TOKEN not in out
    world.forge.token = "another-token"
    code, out = world.cli("apply")
    assert code == 1
    assert "token was rejected (401" in out, out
    assert TOKEN not in out


def test_commit_statuses_are_read_for_a_sha(world: World) -> None:
    """The forge client reads every status reported on a commit, normalised to success,
    failure or pending (the checks gate of promotion relies on it)."""
    sha = "a" * 40
    world.forge.statuses[sha] = {"ci/build": "success", "ci/e2e": "failure", "lint": "pending"}
    if world.kind == "github":
        world.forge.statuses[sha]["actions/test"] = "success"

    async def read() -> list[CommitStatus]:
        async with httpx.AsyncClient() as client:
            forge = connect_forge(
                world.kind, client=client, api_url=world.forge.url,
                project="acme/environments", token=TOKEN, sleep=world.clock.sleep,
                clock=world.clock.now,
            )  # fmt: skip
            return await forge.commit_statuses(sha)

    got = {s.context: s.state for s in anyio.run(read)}
    expected = {"ci/build": "success", "ci/e2e": "failure", "lint": "pending"}
    if world.kind == "github":
        expected["actions/test"] = "success"
    assert got == expected


def _human_commit_on_branch(world: World) -> str:
    work = world.remote.parent / "human-branch"
    git("clone", "--quiet", "--branch", "imagebot/staging", str(world.remote), str(work),
        cwd=world.remote.parent)  # fmt: skip
    (work / "envs/staging/extra.yaml").write_text("extra: 1\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "human tweak", cwd=work)
    git("push", "--quiet", "origin", "HEAD:imagebot/staging", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def test_draft_pull_requests_stay_drafts_when_updated(world: World) -> None:
    """With draft: true the PR opens as a draft (GitHub's draft flag, GitLab's "Draft: " and
    Gitea's "WIP: " title prefix) and an update in place keeps it one."""
    policy = world.policies / "staging.yaml"
    policy.write_text(policy.read_text().replace("  automerge: true\n", "  draft: true\n"))
    assert world.cycle().ok
    pr = world.forge.pulls[1]
    prefix = {"github": "", "gitlab": "Draft: ", "gitea": "WIP: "}[world.kind]
    assert pr.draft
    assert pr.title == prefix + "imagebot(staging): update app 1.0.0 -> 1.1.0"
    world.push_tag("1.2.0")
    assert world.cycle().ok
    assert pr.draft and pr.title == prefix + "imagebot(staging): update app 1.0.0 -> 1.2.0"
    writes = len(world.forge.writes)
    assert world.cycle().ok
    assert len(world.forge.writes) == writes, "the prefix does not look like a change"


def test_plan_without_a_token_shows_the_diff_and_says_the_pr_is_unknown(world: World) -> None:
    """Without the forge token `plan` still prints the diff and change lines (text and JSON)
    plus one line saying which pull request cannot be told; only `apply` needs the token."""
    args = ("--policies", str(world.policies), "--cache-dir", str(world.cache))
    result = run_cli("plan", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"+          image: {world.image}:1.1.0  # staging app" in lines, result.stdout
    assert f"staging: app ({world.image}) 1.0.0 -> 1.1.0" in result.stdout, result.stdout
    assert "staging: pull request: cannot tell which (no token)" in lines, result.stdout
    assert result.stderr == ""
    doc = json.loads(run_cli("plan", "-o", "json", *args).stdout)
    (env,) = doc["environments"]
    assert [(c["from"]["tag"], c["to"]["tag"]) for c in env["changes"]] == [("1.0.0", "1.1.0")]
    assert env["publication"] == "pull request: cannot tell which (no token)"
    applied = run_cli("apply", *args)
    assert applied.returncode == 1
    assert "environment variable FORGE_TOKEN is not set" in applied.stderr, applied.stderr
    assert world.branch() is None, "nothing was pushed without a token"


def test_apply_prints_the_push_before_the_pull_request(world: World) -> None:
    """In pull-request mode `apply` says it pushed the branch, then that it opened the PR:
    the order in which the two happen."""
    code, out = world.cli("apply")
    assert code == 0, out
    lines = out.splitlines()
    pushed = next(i for i, line in enumerate(lines) if line.startswith("staging: pushed "))
    opened = lines.index(
        next(line for line in lines if line.startswith("staging: opened pull request #1"))
    )
    assert pushed < opened, out
