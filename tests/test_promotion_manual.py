"""``imagebot promote / hold / release / rollback`` through the real CLI, a real registry and
a real git remote: each is one commit with trailers, and the next cycle honours it."""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from imagebot.core.promotion.record import (
    ImageRecord,
    PendingManual,
    PullRequestRecord,
    Running,
    approval,
)
from imagebot.daemon.app import build_app
from imagebot.daemon.events import LastCycle
from imagebot.daemon.service import ServeOptions, Service
from tests.support.cli import run_cli
from tests.support.forges import ForgeServer, run_forge
from tests.support.gitenv import commits, make_remote, message, show, trailers
from tests.support.registry import Registry, push_image

NOW = datetime.now(UTC)
ANN = "Ann Operator <ann@example.com>"
TOKEN = "ghp-manual-ops"
DEPLOY = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}:{tag}\n"  # noqa: E501


@dataclass
class World:
    tmp: Path
    registry: Registry
    image: str
    remote: Path

    def cli(self, *args: str) -> tuple[int, str]:
        """Exit code and stdout + stderr."""
        done = self.run(*args)
        return done.returncode, done.stdout + done.stderr

    def run(self, *args: str) -> Any:
        where = ("--policies", str(self.tmp / "policies"), "--cache-dir", str(self.tmp / "cache"))
        return run_cli(*args, *where, env={"FORGE_TOKEN": TOKEN})

    def runs(self, env: str, *, ref: str = "main") -> str:
        text = show(self.remote, f"envs/{env}/app.yaml", ref=ref).decode()
        return text.rsplit(":", 1)[1].strip()

    def pull_requests(self, env: str, forge: ForgeServer, kind: str = "github") -> None:
        """``env`` publishes by pull request through ``forge`` (a ``kind`` server)."""
        policy = self.tmp / "policies" / f"{env}.yaml"
        policy.write_text(
            policy.read_text().replace(
                "images:",
                f"publish:\n  mode: pull-request\n  forge: {{type: {kind}, url: {forge.url},"
                " project: acme/environments, token_env: FORGE_TOKEN}\nimages:",
            )
        )

    def status(self, env: str) -> dict[str, Any]:
        doc = json.loads(self.run("status", "-o", "json", "-e", env).stdout)
        record: dict[str, Any] = doc["environments"][0]["images"][0]
        return record


@pytest.fixture
def world(tmp_path: Path, shared_registry: Registry) -> World:
    return make_world(tmp_path, shared_registry)


def make_world(tmp_path: Path, shared_registry: Registry, *, staging: str = "1.0.0") -> World:
    """dev and staging (promoted from dev, soak 24h) at 1.0.0 (staging at ``staging``) for
    ten days; 1.1.0 is in the registry."""
    name = f"acme/manual-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    image = f"{shared_registry.host}/{name}"
    for tag in ("0.9.0", "1.0.0", "1.1.0"):
        push_image(shared_registry, name, tag)
    remote = make_remote(
        tmp_path,
        {
            "envs/dev/app.yaml": DEPLOY.format(image=image, tag="1.0.0").encode(),
            "envs/staging/app.yaml": DEPLOY.format(image=image, tag=staging).encode(),
        },
        when=NOW - timedelta(days=10),
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    repo = f'{{url: "file://{remote}", branch: main, path: envs/%s}}'
    (policies / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo: {repo % "dev"}
            images:
              - {{name: app, repository: {image}}}
            """
        )
    )
    (policies / "staging.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: staging
            repo: {repo % "staging"}
            promote: {{from: dev, soak: 24h}}
            images:
              - {{name: app, repository: {image}}}
            """
        )
    )
    return World(tmp_path, shared_registry, image, remote)


def test_promote_passes_soak_records_who_and_why_and_the_next_cycle_keeps_it(
    world: World,
) -> None:
    """dev moves to 1.1.0; staging waits for soak; ``imagebot promote`` moves it now with the
    manual trailers, and the next cycle neither undoes it nor moves anything else."""
    assert world.cli("apply")[0] == 0
    assert world.runs("dev") == "1.1.0" and world.runs("staging") == "1.0.0"
    assert world.status("staging")["gate"] == "soak"
    code, out = world.cli(
        "promote", "staging", "app", "--reason", "hotfix for login", "--author", ANN
    )
    assert code == 0, out
    assert world.runs("staging") == "1.1.0"
    said = dict(trailers(world.remote))
    assert said["Imagebot-Manual"] == "promote app"
    assert said["Imagebot-Reason"] == "hotfix for login"
    assert said["Imagebot-To"] == "1.1.0" and said["Imagebot-Promoted-From"] == "dev"
    assert "Ann Operator" in world.cli("status", "-e", "staging")[1]
    head = commits(world.remote)
    assert world.cli("apply")[0] == 0
    assert commits(world.remote) == head
    record = world.status("staging")
    assert record["running"]["tag"] == "1.1.0"
    assert record["since"]["manual"] == f"promote by {ANN}: hotfix for login"


def test_promote_never_passes_a_hold(world: World) -> None:
    """A version held in dev (rolled back there) is not promoted to staging by hand either."""
    assert world.cli("apply")[0] == 0
    assert world.cli("rollback", "dev", "app", "--author", ANN)[0] == 0
    code, out = world.cli("promote", "staging", "app", "1.1.0", "--author", ANN)
    assert code == 1 and "hold" in out, out
    assert world.runs("staging") == "1.0.0"


def test_hold_then_release(world: World) -> None:
    """``hold`` keeps dev at 1.0.0 while 1.1.0 is there to take; ``release`` lets it move."""
    code, out = world.cli("hold", "dev", "app", "--reason", "release freeze", "--author", ANN)
    assert code == 0, out
    assert dict(trailers(world.remote))["Imagebot-Hold"] == "app 1.0.0"
    assert (
        "hold app at 1.0.0 by Ann Operator: release freeze"
        in show(world.remote, "envs/dev/.imagebot/holds.txt").decode()
    )
    assert world.cli("apply")[0] == 0
    assert world.runs("dev") == "1.0.0"
    record = world.status("dev")
    (hold,) = record["holds"]
    assert (hold["author"], hold["reason"], hold["manual"]) == (ANN, "release freeze", True)
    assert record["gate"] == "hold"
    code, out = world.cli("release", "dev", "app", "--author", ANN)
    assert code == 0, out
    assert dict(trailers(world.remote))["Imagebot-Lift-Hold"] == "app"
    assert world.cli("apply")[0] == 0
    assert world.runs("dev") == "1.1.0"
    assert world.status("dev")["holds"] == []


def test_rollback_goes_back_and_holds_the_version_it_left(world: World) -> None:
    """After dev moves to 1.1.0, ``rollback`` puts 1.0.0 back and holds 1.1.0: the next cycle
    keeps 1.0.0 and says who rolled back and why."""
    assert world.cli("apply")[0] == 0
    assert world.runs("dev") == "1.1.0"
    code, out = world.cli("rollback", "dev", "app", "--reason", "500s on checkout", "--author", ANN)
    assert code == 0, out
    assert world.runs("dev") == "1.0.0"
    assert "rollback app 1.1.0 -> 1.0.0" in message(world.remote)
    assert world.cli("apply")[0] == 0
    assert world.runs("dev") == "1.0.0"
    (hold,) = world.status("dev")["holds"]
    assert (hold["version"], hold["author"], hold["reason"]) == ("1.1.0", ANN, "500s on checkout")


def test_manual_commands_name_what_is_wrong(world: World) -> None:
    """An unknown environment or image is an error naming it; nothing is committed."""
    head = commits(world.remote)
    code, out = world.cli("hold", "qa", "app", "--author", ANN)
    assert code == 1 and "no environment 'qa'" in out, out
    code, out = world.cli("hold", "dev", "web", "--author", ANN)
    assert code == 1 and "no image 'web'" in out and "dev.yaml" in out, out
    assert commits(world.remote) == head


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_in_pull_request_mode_promote_goes_through_the_environments_pull_request(
    tmp_path: Path, shared_registry: Registry, kind: str
) -> None:
    """Where staging publishes by pull request, ``promote`` replaces the cycle's proposal in
    the environment's open pull request with its commit (who and why in the trailers, the
    title and body), the environment's branch untouched; the next cycle leaves that pull
    request as it is and status shows the waiting promotion with who and why; once merged,
    staging runs the promoted version and the next cycle neither undoes it nor proposes
    anything."""
    world = make_world(tmp_path, shared_registry, staging="0.9.0")
    with run_forge(kind, world.remote, token=TOKEN) as forge:
        world.pull_requests("staging", forge, kind)
        assert world.cli("apply")[0] == 0
        (pull,) = forge.open_pulls()
        assert (pull.number, pull.head) == (1, "imagebot/staging")
        assert world.runs("staging", ref="imagebot/staging") == "1.0.0"  # 1.1.0 soaks
        head = commits(world.remote)
        code, out = world.cli("promote", "staging", "app", "--reason", "hotfix", "--author", ANN)
        assert code == 0 and "updated pull request #1" in out, out
        assert commits(world.remote) == head
        branch = commits(world.remote, ref="imagebot/staging")
        assert branch[1:] == head  # one commit on the environment's branch
        assert world.runs("staging", ref="imagebot/staging") == "1.1.0"
        said = dict(trailers(world.remote, ref="imagebot/staging"))
        assert (said["Imagebot-Manual"], said["Imagebot-Reason"]) == ("promote app", "hotfix")
        (pull,) = forge.open_pulls()
        assert pull.title == "imagebot(staging): promote app 0.9.0 -> 1.1.0"
        assert f"promote app 0.9.0 -> 1.1.0 by {ANN}: hotfix" in pull.body
        record = world.status("staging")
        assert record["gate"] == "manual" and record["candidate"] is None
        assert record["waiting_for"] == (
            f"manual: promote app 0.9.0 -> 1.1.0 by {ANN}: hotfix: waits in pull request #1"
            f" ({record['pull_request']['url']}) to be merged"
        )
        assert "/acme/environments/" in record["pull_request"]["url"]
        assert record["pull_request"]["url"].endswith("/1")
        (pending,) = record["pull_request"]["manual"]
        assert (pending["operation"], pending["author"], pending["reason"]) == (
            "promote",
            ANN,
            "hotfix",
        )
        code, out = world.cli("apply")
        assert code == 0 and "carries manual operations" in out, out
        assert commits(world.remote, ref="imagebot/staging") == branch
        assert [p.title for p in forge.open_pulls()] == [pull.title]
        forge.merge_by_human(1)
        assert world.cli("apply")[0] == 0
        assert world.runs("staging") == "1.1.0"
        assert not forge.open_pulls()
        record = world.status("staging")
        assert record["since"]["manual"] == f"promote by {ANN}: hotfix"
        assert (record["candidate"], record["gate"]) == (None, None)


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_in_pull_request_mode_a_hold_goes_through_the_pull_request_and_holds_once_merged(
    world: World, kind: str
) -> None:
    """Where dev publishes by pull request, ``hold`` opens the environment's pull request
    (the branch holds the commit, dev's branch is untouched); the next cycle proposes no other
    version beside it; merged, the next cycle keeps the image at its version and the record
    says who holds it and why."""
    with run_forge(kind, world.remote, token=TOKEN) as forge:
        world.pull_requests("dev", forge, kind)
        head = commits(world.remote)
        code, out = world.cli("hold", "dev", "app", "--reason", "freeze", "--author", ANN)
        assert code == 0 and "opened pull request #1" in out, out
        assert commits(world.remote) == head
        (pull,) = forge.open_pulls()
        assert (pull.head, pull.base) == ("imagebot/dev", "main")
        assert pull.title == "imagebot(dev): hold app at 1.0.0"
        branch = commits(world.remote, ref="imagebot/dev")
        assert world.cli("apply")[0] == 0
        assert commits(world.remote, ref="imagebot/dev") == branch
        assert world.runs("dev", ref="imagebot/dev") == "1.0.0"
        record = world.status("dev")
        assert record["gate"] == "manual"
        assert f"hold app at 1.0.0 by {ANN}: freeze" in record["waiting_for"]
        forge.merge_by_human(1)
        assert world.cli("apply")[0] == 0
        assert world.runs("dev") == "1.0.0"
        assert not forge.open_pulls()
        (hold,) = world.status("dev")["holds"]
        assert (hold["author"], hold["reason"], hold["manual"]) == (ANN, "freeze", True)


def test_in_pull_request_mode_manual_operations_stack_in_one_pull_request(world: World) -> None:
    """A second manual operation goes on top of the first in the same pull request, which
    lists both; once merged, the hold and its release are both history and the next cycle
    proposes the newer version again."""
    with run_forge("github", world.remote, token=TOKEN) as forge:
        world.pull_requests("dev", forge)
        assert world.cli("hold", "dev", "app", "--reason", "freeze", "--author", ANN)[0] == 0
        code, out = world.cli("release", "dev", "app", "--reason", "thawed", "--author", ANN)
        assert code == 0 and "updated pull request #1" in out, out
        assert len(commits(world.remote, ref="imagebot/dev")) == len(commits(world.remote)) + 2
        log = show(world.remote, "envs/dev/.imagebot/holds.txt", ref="imagebot/dev").decode()
        assert "hold app at 1.0.0 by Ann Operator: freeze" in log
        assert "release app by Ann Operator: thawed" in log
        (pull,) = forge.open_pulls()
        assert pull.title == "imagebot(dev): release app holds lifted (and 1 more)"
        assert "freeze" in pull.body and "thawed" in pull.body
        forge.merge_by_human(1)
        assert world.cli("apply")[0] == 0
        (pull,) = forge.open_pulls()
        assert pull.number == 2 and world.runs("dev", ref="imagebot/dev") == "1.1.0"
        assert world.status("dev")["holds"] == []


def test_api_and_page_show_a_pending_manual_operation_with_who_and_why(tmp_path: Path) -> None:
    """A manual operation waiting in the environment's pull request is in the API (the pull
    request's ``manual`` list, the ``manual`` gate with its words) and on the page, with who
    ran it and why."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "staging.yaml").write_text(
        "environment: staging\nrepo: {url: https://git.example.com/acme/env.git, path: s}\n"
        "images:\n  - {name: app, repository: ghcr.io/acme/app}\n"
    )
    service = Service(ServeOptions(policies=policies, cache_dir=tmp_path))
    service.policies.load()
    pending = PendingManual("promote", "app", "promote app 1.0.0 -> 1.1.0", ANN, "hotfix", "c0ffee")
    pr = PullRequestRecord(3, "https://github.com/acme/env/pull/3", "open", manual=(pending,))
    choice, waiting = approval("pull-request", pr, "app", "ghcr.io/acme/app", "1.0.1")
    record = ImageRecord(
        environment="staging",
        image="app",
        repository="ghcr.io/acme/app",
        upstream=None,
        running=Running("1.0.0", None, None, None),
        candidates=(),
        choice=choice,
        waiting=waiting,
        publish="pull-request",
        pull_request=pr,
    )
    service.decisions.last["staging"] = LastCycle(True, NOW, None, (record,))

    async def get(path: str) -> str:
        transport = httpx.ASGITransport(app=build_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://imagebot") as client:
            return (await client.get(path)).text

    doc = json.loads(anyio.run(get, "/api/v1/status"))
    (image,) = doc["environments"][0]["images"]
    assert image["pull_request"]["manual"] == [
        {
            "operation": "promote",
            "image": "app",
            "what": "promote app 1.0.0 -> 1.1.0",
            "author": ANN,
            "reason": "hotfix",
            "commit": "c0ffee",
        }
    ]
    assert (image["candidate"], image["waiting"]["gate"]) == (None, "manual")
    assert image["waiting"]["reason"].startswith(f"promote app 1.0.0 -> 1.1.0 by {ANN}: hotfix")
    page = anyio.run(get, "/")
    assert (
        "pending: promote app 1.0.0 -&gt; 1.1.0 (Ann Operator &lt;ann@example.com&gt;: hotfix)"
        in page
    )
