"""Cycles under stress: slow registries, hanging git remotes, hostile hooks, concurrent
processes, and the messages a newcomer sees."""

from __future__ import annotations

import fcntl
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebot.git.workspace import repo_cache_dir
from tests.support.adversary import Adversary, Answer, Request, run_adversary, run_raw
from tests.support.cli import ROOT, run_cli
from tests.support.gitenv import commits, git, make_remote, show, trailers
from tests.support.registry import Registry, free_port, push_image, run_registry

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: {image}:{tag}
"""


def policy(
    directory: Path, env: str, *, url: str | Path, image: str, path: str | None = None
) -> None:
    (directory / f"{env}.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: {env}
            repo: {{url: "{url}", path: {path or f"envs/{env}"}}}
            images:
              - name: app
                repository: {image}
                range: "^1.0"
            """
        )
    )


def cli(policies: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--policies", str(policies), "--cache-dir", str(cache), timeout=90)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with run_registry(tmp_path / "registry") as reg:
        for tag in ("1.0.0", "1.1.0"):
            push_image(reg, "acme/app", tag)
        yield reg


def test_url_credentials_with_at_signs_never_reach_messages(tmp_path: Path) -> None:
    """A password holding a raw ``@`` is redacted up to the last ``@``, and the error names
    the environment."""
    policies = tmp_path / "policies"
    policies.mkdir()
    url = f"http://bot:S3cr@tTok@127.0.0.1:{free_port()}/env.git"
    policy(policies, "dev", url=url, image="127.0.0.1:5000/acme/app")
    result = cli(policies, tmp_path / "cache", "plan")
    assert result.returncode == 1
    assert "tTok" not in result.stdout + result.stderr
    assert "S3cr" not in result.stdout + result.stderr
    assert "error: dev: http://***@127.0.0.1:" in result.stderr


def test_an_image_referenced_by_no_file_is_reported_in_the_result(
    tmp_path: Path, registry: Registry
) -> None:
    """A policy image that no file under repo.path mentions is a problem in the result
    (text and JSON), not "up to date" with exit 0."""
    image = f"{registry.host}/acme/app"
    remote = make_remote(tmp_path, {"envs/dev/other.yaml": b"kind: ConfigMap\n"})
    policies = tmp_path / "policies"
    policies.mkdir()
    policy(policies, "dev", url=remote, image=image)
    result = cli(policies, tmp_path / "cache", "plan")
    assert result.returncode == 1
    expected = f"dev: image app ({image}) is referenced by no file under envs/dev"
    assert f"error: {expected}" in result.stderr
    assert "up to date" not in result.stdout
    doc = json.loads(cli(policies, tmp_path / "cache", "plan", "-o", "json").stdout)
    assert doc["environments"][0]["problems"] == [expected]


def test_a_slow_registry_delays_no_other_environment(tmp_path: Path, registry: Registry) -> None:
    """While one environment's registry holds its tag list back, another environment (first
    in policy order after it) is planned and pushed; the slow one then finishes too."""
    fast_image = f"{registry.host}/acme/app"
    fast_remote = make_remote(
        tmp_path / "fast",
        {"envs/fast/app.yaml": DEPLOYMENT.format(image=fast_image, tag="1.0.0").encode()},
    )
    seen_push = threading.Event()

    def slow(r: Request, s: Adversary) -> Answer:
        # Hold the answer until the other environment's push lands (or 20 s pass).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(commits(fast_remote)) < 2:
            time.sleep(0.05)
        if len(commits(fast_remote)) == 2:
            seen_push.set()
        body = json.dumps({"name": "acme/slow", "tags": ["1.0.0"]}).encode()
        return Answer(200, {"Content-Type": "application/json"}, body)

    with run_adversary(slow) as slow_registry:
        slow_image = f"{slow_registry.host}/acme/slow"
        slow_remote = make_remote(
            tmp_path / "slow",
            {"envs/aslow/app.yaml": DEPLOYMENT.format(image=slow_image, tag="1.0.0").encode()},
        )
        policies = tmp_path / "policies"
        policies.mkdir()
        # "aslow" sorts first: in the old sequential cycle it would go first, too.
        policy(policies, "aslow", url=slow_remote, image=slow_image)
        policy(policies, "fast", url=fast_remote, image=fast_image)
        result = cli(policies, tmp_path / "cache", "apply")
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen_push.is_set(), "the fast environment waited for the slow registry"
    assert b"app:1.1.0" in show(fast_remote, "envs/fast/app.yaml")
    assert "aslow: 1 image up to date" in result.stdout.splitlines()


def test_a_git_remote_that_never_answers_times_out(tmp_path: Path) -> None:
    """A fetch from a remote that accepts the connection and says nothing ends after
    --git-timeout with an error naming the environment and the setting."""
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        release.wait(60)

    with run_raw(silent) as host:
        policies = tmp_path / "policies"
        policies.mkdir()
        policy(policies, "dev", url=f"http://{host}/env.git", image="127.0.0.1:5000/acme/app")
        result = cli(policies, tmp_path / "cache", "plan", "--git-timeout", "1")
        release.set()
    assert result.returncode == 1
    assert "error: dev: http://127.0.0.1:" in result.stderr
    assert "cannot fetch branch 'main': no answer within 1s (git_timeout)" in result.stderr


def test_a_branch_that_keeps_moving_is_given_up_after_three_pushes(
    tmp_path: Path, registry: Registry
) -> None:
    """When someone else lands a commit on the branch during every push, imagebot reads and
    plans again on the new head each time, and after three pushes reports that it gave up,
    leaving every other commit in place."""
    image = f"{registry.host}/acme/app"
    remote = make_remote(
        tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image, tag="1.0.0").encode()}
    )
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
        "head=$(git rev-parse refs/heads/main)\n"
        "export GIT_AUTHOR_NAME=h GIT_AUTHOR_EMAIL=h@x GIT_COMMITTER_NAME=h"
        " GIT_COMMITTER_EMAIL=h@x\n"
        'new=$(echo human | git commit-tree "$head^{tree}" -p "$head")\n'
        'git update-ref refs/heads/main "$new" "$head"\n'
    )
    hook.chmod(0o755)
    policies = tmp_path / "policies"
    policies.mkdir()
    policy(policies, "dev", url=remote, image=image)
    result = cli(policies, tmp_path / "cache", "apply")
    assert result.returncode == 1
    assert "error: dev: gave up after 3 push attempts:" in result.stderr
    assert "rejected: the branch moved ([remote rejected] failed to update ref)" in result.stderr
    assert len(commits(remote)) == 4  # the first commit and one human commit per push
    assert show(remote, "envs/dev/app.yaml") == DEPLOYMENT.format(image=image, tag="1.0.0").encode()


def test_a_hook_saying_fetch_first_is_not_mistaken_for_a_race(
    tmp_path: Path, registry: Registry
) -> None:
    """A pre-receive hook's rejection is reported once with the hook's own text, whatever it
    says, and is not retried as a push race."""
    image = f"{registry.host}/acme/app"
    remote = make_remote(
        tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image, tag="1.0.0").encode()}
    )
    calls = tmp_path / "hook-calls"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"echo run >> {calls}\n"
        'echo "Direct pushes are closed: fetch first and open a merge request" >&2\n'
        "exit 1\n"
    )
    hook.chmod(0o755)
    policies = tmp_path / "policies"
    policies.mkdir()
    policy(policies, "dev", url=remote, image=image)
    result = cli(policies, tmp_path / "cache", "apply")
    assert result.returncode == 1
    assert (
        "rejected: [remote rejected] pre-receive hook declined: Direct pushes are closed:"
        " fetch first and open a merge request" in result.stderr
    )
    assert "kept moving" not in result.stdout + result.stderr
    assert calls.read_text().count("run") == 1
    assert len(commits(remote)) == 1


def run_two_applies(
    policies: Path, caches: tuple[Path, Path]
) -> list[subprocess.CompletedProcess[str]]:
    env = {"PYTHONPATH": str(ROOT), "IMAGEBOT_LOG_FORMAT": "json"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagebot",
                "apply",
                "--policies",
                str(policies),
                "--cache-dir",
                str(cache),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**__import__("os").environ, **env},
        )
        for cache in caches
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("shared_cache", [True, False], ids=["shared-cache", "own-caches"])
def test_two_apply_processes_lose_and_duplicate_no_commit(
    tmp_path: Path, registry: Registry, shared_cache: bool
) -> None:
    """Two `imagebot apply` processes on the same environments, ten rounds, each round a new
    release: both succeed every round, and each environment gets exactly one commit per
    release (none lost, none duplicated), whether they share a cache directory or not."""
    image = f"{registry.host}/acme/app"
    remote = make_remote(
        tmp_path,
        {
            f"envs/{env}/app.yaml": DEPLOYMENT.format(image=image, tag="1.1.0").encode()
            for env in ("dev", "prod")
        },
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    for env in ("dev", "prod"):
        policy(policies, env, url=remote, image=image)
    caches = (tmp_path / "cache-a", tmp_path / ("cache-a" if shared_cache else "cache-b"))
    for round_ in range(2, 12):
        tag = f"1.{round_}.0"
        push_image(registry, "acme/app", tag)
        before = len(commits(remote))
        results = run_two_applies(policies, caches)
        for result in results:
            assert result.returncode == 0, f"round {round_}: {result.stdout}{result.stderr}"
        assert len(commits(remote)) == before + 2, f"round {round_}"
        for env in ("dev", "prod"):
            assert f"app:{tag}".encode() in show(remote, f"envs/{env}/app.yaml")
        moved = sorted(
            git(
                "log", "-2", "--format=%(trailers:key=Imagebot-Environment,valueonly)", cwd=remote
            ).split()
        )
        assert moved == ["dev", "prod"], f"round {round_}"
    assert ("Imagebot-To", "1.11.0") in trailers(remote)


def test_shipped_example_policies_fail_naming_each_environment(tmp_path: Path) -> None:
    """The example policies/, with repo.url on a host that cannot be reached, fail once per
    environment with the environment's name, and the README says to edit repo.url."""
    policies = tmp_path / "policies"
    policies.mkdir()
    unreachable = f"http://127.0.0.1:{free_port()}/environments.git"
    for shipped in sorted((ROOT / "policies").glob("*.yaml")):
        text = shipped.read_text().replace(
            "https://git.example.com/acme/environments.git", unreachable
        )
        assert unreachable in text, shipped
        (policies / shipped.name).write_text(text)
    result = cli(policies, tmp_path / "cache", "plan")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # Environments are reported upstream first (staging promotes from dev, production from
    # staging), the order they run in.
    assert [e.split(":")[1].strip() for e in errors] == ["dev", "staging", "production"]
    readme = (ROOT / "README.md").read_text()
    assert "Edit `repo.url`" in readme
    assert all("point it at your environment repo" in p.read_text() for p in policies.iterdir())


def test_a_clone_locked_by_another_process_is_waited_for_within_the_git_timeout(
    tmp_path: Path, registry: Registry
) -> None:
    """While another process holds a clone's lock, imagebot waits at most --git-timeout and
    then says so, naming the environment; once the lock is free the same run succeeds."""
    image = f"{registry.host}/acme/app"
    remote = make_remote(
        tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image, tag="1.0.0").encode()}
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    policy(policies, "dev", url=remote, image=image)
    cache = tmp_path / "cache"
    clone = repo_cache_dir(cache / "repos", str(remote))
    clone.parent.mkdir(parents=True)
    with (clone.parent / f"{clone.name}.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = cli(policies, cache, "plan", "--git-timeout", "1")
        fcntl.flock(held, fcntl.LOCK_UN)
    assert result.returncode == 1
    assert "error: dev: " in result.stderr
    assert "stayed locked by another imagebot process for 1s (git_timeout)" in result.stderr
    result = cli(policies, cache, "plan", "--git-timeout", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1.0.0 -> 1.1.0" in result.stdout


def test_a_push_that_hangs_times_out_and_leaves_the_branch_alone(
    tmp_path: Path, registry: Registry
) -> None:
    """A push the remote never finishes (a hook that hangs) ends after --git-timeout with an
    error naming the environment and the setting; the branch does not move."""
    image = f"{registry.host}/acme/app"
    remote = make_remote(
        tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image, tag="1.0.0").encode()}
    )
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nsleep 4\nexit 0\n")
    hook.chmod(0o755)
    policies = tmp_path / "policies"
    policies.mkdir()
    policy(policies, "dev", url=remote, image=image)
    result = cli(policies, tmp_path / "cache", "apply", "--git-timeout", "1")
    assert result.returncode == 1
    assert f"error: dev: {remote}: push to 'main': no answer within 1s (git_timeout)" in (
        result.stderr
    )
    assert len(commits(remote)) == 1
