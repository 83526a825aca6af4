"""Signed commits through git's own signing (``gpg.format`` ssh or openpgp), with the key
used from a private scratch directory so the user's keyring and agent are never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imagebot.errors import GitError


@dataclass(frozen=True)
class Signing:
    """Sign commits with git's own signing: ``gpg.format`` ssh or openpgp."""

    format: str  # "ssh" | "openpgp"
    key_file: Path


def signed_commit(
    clone: Path, tree: str, parent: str, message: str, *, env: Mapping[str, str],
    signing: Signing, timeout: float, where: str,
) -> str:  # fmt: skip
    """``git commit-tree -S`` in ``clone`` with ``env`` (author, committer, dates): git signs
    through its own ``gpg.format`` machinery; the new commit's sha.

    The key is used from a private temporary directory: ssh-keygen refuses a key file
    others can read (a mounted secret often is), and an OpenPGP key is imported into a
    throw-away keyring so the user's own keyring and agent are never touched.
    """
    env = {**os.environ, **env}
    scratch = tempfile.mkdtemp(prefix="ib-sign-")  # short: gpg-agent's socket lives here
    try:
        os.chmod(scratch, 0o700)
        if signing.format == "ssh":
            key = Path(scratch) / "key"
            key.write_bytes(_read_key(signing.key_file))
            key.chmod(0o600)
            config = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={key}"]
            flag = "-S"
        else:
            env["GNUPGHOME"] = scratch
            fingerprint = _import_openpgp_key(signing.key_file, env)
            config = ["-c", "gpg.format=openpgp"]
            flag = f"-S{fingerprint}"
        result = subprocess.run(
            ["git", *config, "commit-tree", tree, "-p", parent, flag, "-F", "-"],
            cwd=clone, input=message.encode("utf-8"), env=env, capture_output=True,
            check=False, timeout=timeout,
        )  # fmt: skip
        if signing.format == "openpgp":
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.returncode != 0:
        err = " ".join(result.stderr.decode("utf-8", "replace").split())
        raise GitError(
            f"{where}: cannot sign commit with {signing.format} key {signing.key_file}: {err}"
        )
    return result.stdout.decode().strip()


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GitError(f"signing key {path}: cannot read: {exc.strerror or exc}") from None


def _import_openpgp_key(path: Path, env: Mapping[str, str]) -> str:
    """Import an armoured secret key into ``env``'s GNUPGHOME; return its fingerprint."""
    data = _read_key(path)
    result = subprocess.run(
        ["gpg", "--batch", "--import", "--import-options", "import-show", "--with-colons"],
        input=data, env=dict(env), capture_output=True, check=False,
    )  # fmt: skip
    fingerprints = [
        line.split(":")[9]
        for line in result.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("fpr:")
    ]
    if result.returncode != 0 or not fingerprints:
        err = " ".join(result.stderr.decode("utf-8", "replace").split())
        raise GitError(f"signing key {path}: not an OpenPGP secret key: {err}")
    return fingerprints[0]
