"""Policies from a git repository (``--policies git+URL#BRANCH:PATH``): plan reads them, serve
picks up a pushed change without a restart, and a broken revision keeps the last good one
and is reported with file:line and commit."""

from __future__ import annotations

import hashlib
import hmac
import textwrap
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.daemon import run_daemon, wait_for
from tests.support.gitenv import DEPLOYMENT, git, make_remote, push_files, show
from tests.support.registry import Registry, push_image

SECRET = "whsec-policies-from-git"


def policy(remote: Path, image: str, *, extra: str = "") -> bytes:
    return (
        textwrap.dedent(
            f"""\
        environment: dev
        repo: {{url: {remote}, path: envs/dev}}
        schedule: {{every: 24h}}
        images:
          - name: app
            repository: {image}
        """
        ).encode()
        + extra.encode()
    )


def setup(tmp_path: Path, registry: Registry, *, extra: str = "") -> tuple[Path, str]:
    """The environment repo holding its own policies under policies/."""
    image = f"{registry.host}/acme/app"
    push_image(registry, "acme/app", "1.0.0")
    push_image(registry, "acme/app", "1.1.0")
    remote = make_remote(tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()})
    push_files(remote, {"policies/dev.yaml": policy(remote, image, extra=extra)}, message="p")
    return remote, image


def head(remote: Path) -> str:
    return git("rev-parse", "main", cwd=remote).strip()


def test_plan_reads_policies_from_git(tmp_path: Path, registry: Registry) -> None:
    """`plan --policies git+file://…#main:policies` fetches the policies and plans with them."""
    remote, _ = setup(tmp_path, registry)
    source = f"git+file://{remote}#main:policies"
    result = run_cli("plan", "--policies", source, "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert "1.0.0" in result.stdout and "1.1.0" in result.stdout


def test_check_names_file_line_and_commit_of_a_broken_policy(
    tmp_path: Path, registry: Registry
) -> None:
    """A broken policy in git is reported as policies/dev.yaml:LINE with the commit read."""
    remote, _ = setup(tmp_path, registry, extra="    strategy: newest-ish\n")
    source = f"git+file://{remote}#main:policies"
    cache = {"IMAGEBOT_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("check", "--policies", source, env=cache)
    assert result.returncode == 1
    assert "policies/dev.yaml:7:" in result.stderr, result.stderr
    assert f"(commit {head(remote)[:12]})" in result.stderr
    assert str(tmp_path / "cache") not in result.stderr  # named as in the repository


def test_a_bad_source_is_a_clear_error(tmp_path: Path) -> None:
    """A git source without a URL, or one that cannot be fetched, is an error naming it."""
    bad = run_cli("plan", "--policies", "git+#main:policies", "--cache-dir", str(tmp_path))
    assert bad.returncode == 1
    assert "expected git+URL#BRANCH:PATH" in bad.stderr
    missing = f"git+file://{tmp_path}/nowhere.git#main:policies"
    gone = run_cli("plan", "--policies", missing, "--cache-dir", str(tmp_path / "c"))
    assert gone.returncode == 1
    assert "git fetch failed" in gone.stderr and "nowhere.git" in gone.stderr


def test_serve_follows_pushed_policies_and_keeps_the_last_good_one(
    tmp_path: Path, registry: Registry
) -> None:
    """serve runs the policies of the branch; a pushed change (announced by a forge push
    webhook) is picked up without a restart; a broken revision keeps the last good policies
    running and /readyz, the status API and the log name the file, line and commit."""
    remote, image = setup(tmp_path, registry, extra='    range: "<1.1.0"\n')
    source = f"git+file://{remote}#main:policies"

    def forge_push(d: object, body: bytes) -> int:
        mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={mac}"}
        return d.post("/webhooks/github", body, headers).status_code  # type: ignore[attr-defined]

    args = ["--policies", source, "--cache-dir", str(tmp_path / "cache")]
    env = {"IMAGEBOT_WEBHOOK_SECRET": SECRET}
    with run_daemon(tmp_path, *args, "--reload-interval", "3600", env=env) as d:
        wait_for(lambda: bool(d.named("cycle_finished")), timeout=30, what="startup cycle")
        assert b"1.0.0" in show(remote, "envs/dev/app.yaml")  # held back by the range

        push_files(remote, {"policies/dev.yaml": policy(remote, image)}, message="widen")
        assert forge_push(d, b'{"ref": "refs/heads/main", "n": 1}') == 202
        wait_for(
            lambda: b"1.1.0" in show(remote, "envs/dev/app.yaml"),
            timeout=30,
            what="the widened policy to publish 1.1.0",
        )
        assert [e["trigger"] for e in d.named("cycle_started")][-1] == "reload"

        broken = policy(remote, image, extra="    strategy: newest-ish\n")
        push_files(remote, {"policies/dev.yaml": broken}, message="break")
        commit = head(remote)
        assert forge_push(d, b'{"ref": "refs/heads/main", "n": 2}') == 202

        def reported() -> bool:
            return any(commit[:12] in p for p in d.get("/readyz").json()["policy_problems"])

        wait_for(reported, timeout=30, what="the broken revision in /readyz")
        ready = d.get("/readyz").json()
        assert ready["kept_last_good"] == ["dev"]
        assert any(p.startswith("policies/dev.yaml:7:") for p in ready["policy_problems"])
        assert "dev" in ready["environments"]
        assert any(commit[:12] in e["detail"] for e in d.named("policy_problem"))
        replica = d.get("/api/v1/status").json()["replica"]
        assert replica["policy_problems"] == ready["policy_problems"]
