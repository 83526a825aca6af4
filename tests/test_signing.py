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
from tests.support.gitenv import commits, make_remote
from tests.support.registry import Registry, push_image

EMAIL = "imagebot@acme.example"

pytestmark = pytest.mark.skipif(
    not (shutil.which("ssh-keygen") and shutil.which("gpg")),
    reason="ssh-keygen and gpg are needed (scripts/setup.sh installs them)",
)


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
    assert "signing key /nonexistent/key: cannot read" in result.stdout, result.stdout
    assert len(commits(remote)) == 1
