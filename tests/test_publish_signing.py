"""Signed commits: imagebot signs through git's own ``gpg.format`` (ssh or openpgp), and
``git verify-commit`` accepts the signature against a key the test generates."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.forges import run_forge
from tests.support.gitenv import commits, make_remote
from tests.support.registry import Registry, push_image

EMAIL = "imagebot@acme.example"


def _setup(tmp_path: Path, registry: Registry, signing: str) -> tuple[Path, Path]:
    repository = f"acme/signed-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    for tag in ("1.0.0", "1.1.0"):
        push_image(registry, repository, tag)
    image = f"{registry.host}/{repository}"
    remote = make_remote(tmp_path, {"envs/dev/app.yaml": f"image: {image}:1.0.0\n".encode()})
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo:
              url: {remote}
              path: envs/dev
              author: {{name: imagebot, email: {EMAIL}}}
            signing: {signing}
            images:
              - name: app
                repository: {image}
                range: "^1.0"
            """
        )
    )
    return remote, policies


def _apply(tmp_path: Path, policies: Path) -> None:
    result = run_cli("apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 0, result.stdout + result.stderr


def _verify(remote: Path, *config: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *config, "verify-commit", "-v", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return f"rc={result.returncode}\n{result.stderr}"


def _ssh_key(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(path)], check=True
    )
    return path.with_suffix(".pub").read_text().strip()


def test_ssh_signed_commit_verifies(tmp_path: Path, shared_registry: Registry) -> None:
    """With signing format ssh, the pushed commit verifies against the key's public half and
    fails against another key."""
    key = tmp_path / "keys" / "signing"
    key.parent.mkdir()
    public = _ssh_key(key)
    key.chmod(0o644)  # as a mounted secret often is: imagebot copies it to a private file
    remote, policies = _setup(tmp_path, shared_registry, f"{{key_file: {key}, format: ssh}}")
    _apply(tmp_path, policies)
    assert len(commits(remote)) == 2
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'{EMAIL} namespaces="git" {public}\n')
    out = _verify(remote, "-c", f"gpg.ssh.allowedSignersFile={allowed}")
    assert out.startswith("rc=0"), out
    assert f'Good "git" signature for {EMAIL}' in out

    other = _ssh_key(tmp_path / "keys" / "other")
    allowed.write_text(f'{EMAIL} namespaces="git" {other}\n')
    assert not _verify(remote, "-c", f"gpg.ssh.allowedSignersFile={allowed}").startswith("rc=0")


@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    """A short-path keyring (gpg-agent's socket path is length-limited), agent stopped after."""
    home = Path(tempfile.mkdtemp(prefix="ibt-gpg-"))
    home.chmod(0o700)
    try:
        yield home
    finally:
        env = {**os.environ, "GNUPGHOME": str(home)}
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False
        )
        shutil.rmtree(home, ignore_errors=True)


def test_openpgp_signed_commit_verifies(
    tmp_path: Path, shared_registry: Registry, gnupg_home: Path
) -> None:
    """With signing format openpgp and an armoured secret key, the pushed commit carries a
    good signature from that key."""
    env = {**os.environ, "GNUPGHOME": str(gnupg_home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"imagebot <{EMAIL}>",
         "ed25519", "sign", "never"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    armoured = subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", EMAIL],
        env=env, check=True, capture_output=True,
    ).stdout  # fmt: skip
    key = tmp_path / "signing.asc"
    key.write_bytes(armoured)
    remote, policies = _setup(tmp_path, shared_registry, f"{{key_file: {key}, format: openpgp}}")
    _apply(tmp_path, policies)
    out = _verify(remote, env={"GNUPGHOME": str(gnupg_home)})
    assert out.startswith("rc=0"), out
    assert f'Good signature from "imagebot <{EMAIL}>"' in out


def test_unreadable_signing_key_fails_only_that_environment(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """A missing key file is a clear error naming the key; nothing is pushed."""
    remote, policies = _setup(tmp_path, shared_registry, "{key_file: /nonexistent/key}")
    result = run_cli("apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 1
    assert "signing key /nonexistent/key: cannot read" in result.stderr, result.stderr
    assert len(commits(remote)) == 1


def test_pull_request_branch_commit_is_signed(tmp_path: Path, shared_registry: Registry) -> None:
    """In pull-request mode the commit on imagebot's branch is signed the same way."""
    key = tmp_path / "signing"
    public = _ssh_key(key)
    remote, policies = _setup(tmp_path, shared_registry, f"{{key_file: {key}, format: ssh}}")
    with run_forge("github", remote, token="t0ken") as forge:
        policy = policies / "dev.yaml"
        policy.write_text(
            policy.read_text().replace(
                "images:",
                "publish:\n  mode: pull-request\n  forge: {type: github, url: "
                f"{forge.url}, project: acme/environments, token_env: T}}\nimages:",
            )
        )
        result = run_cli(
            "apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"),
            env={"T": "t0ken"},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(forge.open_pulls()) == 1
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'{EMAIL} namespaces="git" {public}\n')
    out = subprocess.run(
        ["git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", "imagebot/dev"],
        cwd=remote, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(commits(remote)) == 1, "the base branch is untouched"
