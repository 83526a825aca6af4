"""Commit mode with several environments in one repo: one commit each, pushed together."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

from imagebot.core.plan import Change, EnvironmentPlan, commit_message
from imagebot.core.publish_policy import PublishSpec
from imagebot.publisher.proposal import title
from tests.support.cli import run_cli
from tests.support.gitenv import commits, git, make_remote, message, show, trailers
from tests.support.registry import Registry, push_image

TWO_IMAGES = """\
containers:
  - image: {app}:1.0.0
  - image: {db}:1.0.0
"""


def _policy(env: str, remote: Path, path: str, name: str, image: str) -> str:
    return textwrap.dedent(
        f"""\
        environment: {env}
        repo: {{url: {remote}, path: {path}}}
        images:
          - name: {name}
            repository: {image}
            range: "^1.0"
        """
    )


def test_environments_of_one_repo_get_one_commit_each(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """Three environments in three directories of one repo: one apply leaves three commits on
    main, each with its own environment's trailers and files."""
    suffix = hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
    app = f"{shared_registry.host}/acme/multi-{suffix}"
    for tag in ("1.0.0", "1.1.0"):
        push_image(shared_registry, f"acme/multi-{suffix}", tag)
    envs = ["dev", "qa", "staging"]
    files = {f"envs/{e}/app.yaml": f"image: {app}:1.0.0\n".encode() for e in envs}
    remote = make_remote(tmp_path, files)
    policies = tmp_path / "policies"
    policies.mkdir()
    for env in envs:
        (policies / f"{env}.yaml").write_text(_policy(env, remote, f"envs/{env}", "app", app))
    result = run_cli("apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 0, result.stdout + result.stderr
    history = commits(remote)
    assert len(history) == 4
    touched = [
        git("show", "--name-only", "--format=", sha, cwd=remote).split() for sha in history[:3]
    ]
    assert sorted(touched) == [[f"envs/{e}/app.yaml"] for e in envs]
    for env in envs:
        assert show(remote, f"envs/{env}/app.yaml") == f"image: {app}:1.1.0\n".encode()


def test_environments_editing_the_same_file_both_land(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """Two environments whose images live in the same file: the second is planned again on
    top of the first one's commit, so neither edit is lost."""
    suffix = hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
    app = f"{shared_registry.host}/acme/shared-app-{suffix}"
    db = f"{shared_registry.host}/acme/shared-db-{suffix}"
    for repo in (f"acme/shared-app-{suffix}", f"acme/shared-db-{suffix}"):
        for tag in ("1.0.0", "1.1.0"):
            push_image(shared_registry, repo, tag)
    remote = make_remote(
        tmp_path, {"envs/one/app.yaml": TWO_IMAGES.format(app=app, db=db).encode()}
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "a.yaml").write_text(_policy("a", remote, "envs/one", "app", app))
    (policies / "b.yaml").write_text(_policy("b", remote, "envs/one", "db", db))
    result = run_cli("apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 0, result.stdout + result.stderr
    expected = TWO_IMAGES.format(app=app, db=db).replace("1.0.0", "1.1.0").encode()
    assert show(remote, "envs/one/app.yaml") == expected
    assert len(commits(remote)) == 3


def test_environments_of_two_repos_publish_side_by_side(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """Two repos with two environments each (interleaved in policy order): every
    environment lands as its own commit in its own repo."""
    suffix = hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
    app = f"{shared_registry.host}/acme/two-{suffix}"
    for tag in ("1.0.0", "1.1.0"):
        push_image(shared_registry, f"acme/two-{suffix}", tag)
    policies = tmp_path / "policies"
    policies.mkdir()
    remotes = {}
    for repo in ("r1", "r2"):
        files = {f"envs/{e}/app.yaml": f"image: {app}:1.0.0\n".encode() for e in ("x", "y")}
        remotes[repo] = make_remote(tmp_path / repo, files)
    for env, repo, path in [("a", "r1", "x"), ("b", "r2", "x"), ("c", "r1", "y"), ("d", "r2", "y")]:
        (policies / f"{env}.yaml").write_text(
            _policy(env, remotes[repo], f"envs/{path}", "app", app)
        )
    result = run_cli("apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 0, result.stdout + result.stderr
    for remote in remotes.values():
        assert len(commits(remote)) == 3
        for path in ("x", "y"):
            assert show(remote, f"envs/{path}/app.yaml") == f"image: {app}:1.1.0\n".encode()


def test_pinned_digests_stay_out_of_the_subject_and_are_short_on_screen(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """With digest: pin and a long image name the commit subject is at most 72 characters
    and names versions only; body and trailers carry the whole digest; plan lines show it
    as status does (sha256: and 12 hex characters) and JSON whole."""
    suffix = hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
    repository = f"acme/a-rather-long-backend-service-name-{suffix}"
    image = f"{shared_registry.host}/{repository}"
    old = push_image(shared_registry, repository, "1.2.0")
    new = push_image(shared_registry, repository, "1.3.0")
    remote = make_remote(tmp_path, {"envs/dev/app.yaml": f"image: {image}:1.2.0@{old}\n".encode()})
    policies = tmp_path / "policies"
    policies.mkdir()
    text = _policy("dev", remote, "envs/dev", "a-rather-long-backend-service-name", image)
    (policies / "dev.yaml").write_text(text + "    digest: pin\n")
    args = ("--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    planned = run_cli("plan", *args)
    assert planned.returncode == 0, planned.stderr
    (line,) = [x for x in planned.stdout.splitlines() if x.startswith("dev: ") and " -> " in x]
    assert line.endswith(f"1.2.0@{old[:19]} -> 1.3.0@{new[:19]}  [envs/dev/app.yaml:1]"), line
    doc = json.loads(run_cli("plan", "-o", "json", *args).stdout)
    assert doc["environments"][0]["changes"][0]["to"] == {"tag": "1.3.0", "digest": new}
    assert run_cli("apply", *args).returncode == 0
    subject, _, rest = message(remote).partition("\n")
    assert subject == "imagebot(dev): update a-rather-long-backend-service-name 1.2.0 -> 1.3.0"
    assert f"1.2.0@{old} -> 1.3.0@{new}" in rest
    assert ("Imagebot-To", f"1.3.0@{new}") in trailers(remote)


def _move(image: str, old: str, new: str, digest: str | None = None) -> Change:
    return Change(
        environment="production", image=image, repository=f"ghcr.io/acme/{image}",
        file="app.yaml", line=1, field="image", kind="kubernetes", old_tag=old,
        old_digest=digest, new_tag=new, new_digest=digest, image_digest=digest, reason="r",
    )  # fmt: skip


def test_subjects_fit_in_72_characters_by_dropping_words() -> None:
    """A subject that would pass 72 characters first drops the old version, then lists fewer
    images; a digest never appears in it."""
    digest = "sha256:" + "ab" * 32
    plan = EnvironmentPlan(
        "production", "p.yaml", changes=(_move("backend", "1.2.0", "1.3.0", digest),)
    )
    assert (
        commit_message(plan).splitlines()[0]
        == "imagebot(production): update backend 1.2.0 -> 1.3.0"
    )
    long = "x" * 28
    plan = EnvironmentPlan(
        "production", "p.yaml", changes=(_move(long, "1.2.0-rc.1", "1.3.0-rc.1"),)
    )
    assert (
        commit_message(plan).splitlines()[0] == f"imagebot(production): update {long} to 1.3.0-rc.1"
    )
    names = ["api", "backend", "frontend", "gateway", "scheduler", "worker-long-name"]
    plan = EnvironmentPlan("production", "p.yaml", changes=tuple(_move(n, "1", "2") for n in names))
    subject = commit_message(plan).splitlines()[0]
    assert subject == "imagebot(production): update 6 images: api, backend, frontend, …"
    for text in (subject, title(PublishSpec(), plan, branch="b", base="main")):
        assert len(text) <= 72, text
