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

import pytest

from tests.support.cli import run_cli
from tests.support.forges import run_forge
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

    def runs(self, env: str) -> str:
        text = show(self.remote, f"envs/{env}/app.yaml").decode()
        return text.rsplit(":", 1)[1].strip()

    def status(self, env: str) -> dict[str, Any]:
        doc = json.loads(self.run("status", "-o", "json", "-e", env).stdout)
        record: dict[str, Any] = doc["environments"][0]["images"][0]
        return record


@pytest.fixture
def world(tmp_path: Path, shared_registry: Registry) -> World:
    name = f"acme/manual-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    image = f"{shared_registry.host}/{name}"
    for tag in ("1.0.0", "1.1.0"):
        push_image(shared_registry, name, tag)
    remote = make_remote(
        tmp_path,
        {
            "envs/dev/app.yaml": DEPLOY.format(image=image, tag="1.0.0").encode(),
            "envs/staging/app.yaml": DEPLOY.format(image=image, tag="1.0.0").encode(),
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


def test_in_pull_request_mode_a_hold_is_a_pull_request_honoured_once_merged(world: World) -> None:
    """Where the environment publishes by pull request, ``hold`` opens one (the branch holds
    the commit, the environment's branch is untouched); merged, the next cycle keeps the
    image at its version."""
    with run_forge("github", world.remote, token=TOKEN) as forge:
        dev = world.tmp / "policies" / "dev.yaml"
        dev.write_text(
            dev.read_text().replace(
                "images:",
                f"publish:\n  mode: pull-request\n  forge: {{type: github, url: {forge.url},"
                " project: acme/environments, token_env: FORGE_TOKEN}\nimages:",
            )
        )
        head = commits(world.remote)
        code, out = world.cli("hold", "dev", "app", "--reason", "freeze", "--author", ANN)
        assert code == 0 and "pull request #1" in out, out
        assert commits(world.remote) == head
        (pull,) = forge.open_pulls()
        assert pull.head == "imagebot/manual/dev-hold-app" and pull.base == "main"
        forge.merge_by_human(1)
        assert world.cli("apply")[0] == 0
        assert world.runs("dev") == "1.0.0"
        assert not forge.open_pulls()
        (hold,) = world.status("dev")["holds"]
        assert (hold["author"], hold["reason"], hold["manual"]) == (ANN, "freeze", True)
