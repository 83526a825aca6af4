"""Real git remotes in temp dirs: a bare repo seeded with files, and ways to look inside."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

GIT_ENV_ARGS = ("-c", "user.name=Test Human", "-c", "user.email=human@example.com")

#: An environment file: one Deployment running ``{image}`` at 1.0.0 (``.format(image=...)``).
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
          image: {image}:1.0.0
"""


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    out = subprocess.run(
        ["git", *GIT_ENV_ARGS, *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={**os.environ, **env} if env else None,
    ).stdout
    return out.decode("utf-8", "replace")


def make_remote(
    root: Path, files: Mapping[str, bytes], *, branch: str = "main", when: datetime | None = None
) -> Path:
    """A bare remote whose ``branch`` holds ``files`` in one commit by a human."""
    remote = root / "remote.git"
    remote.mkdir(parents=True)
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(remote), cwd=root)
    push_files(remote, files, message="initial", branch=branch, when=when)
    return remote


def push_files(
    remote: Path,
    files: Mapping[str, bytes],
    *,
    message: str,
    branch: str = "main",
    when: datetime | None = None,
) -> str:
    """Commit ``files`` on top of ``branch`` as a human would, push, return the new sha.
    ``when`` dates the commit (tests with an injected clock date human commits by it)."""
    work = remote.parent / f"human-{abs(hash((str(remote), message)))}"
    if work.exists():
        git("fetch", "--quiet", "origin", cwd=work)
        git("reset", "--quiet", "--hard", f"origin/{branch}", cwd=work)
    else:
        git("clone", "--quiet", str(remote), str(work), cwd=remote.parent)
        git("config", "core.autocrlf", "false", cwd=work)
        git("checkout", "--quiet", "-B", branch, cwd=work)
    for path, data in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    git("add", "-A", cwd=work)
    dated = {}
    if when is not None:
        stamp = f"{int(when.timestamp())} +0000"
        dated = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work, env=dated)
    git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def show(remote: Path, path: str, *, ref: str = "main") -> bytes:
    """The exact bytes of ``path`` at ``ref`` in the remote."""
    return subprocess.run(
        ["git", "show", f"{ref}:{path}"], cwd=remote, check=True, capture_output=True
    ).stdout


def commits(remote: Path, *, ref: str = "main") -> list[str]:
    return git("rev-list", ref, cwd=remote).split()


def message(remote: Path, *, ref: str = "main") -> str:
    return git("log", "-1", "--format=%B", ref, cwd=remote)


def trailers(remote: Path, *, ref: str = "main") -> list[tuple[str, str]]:
    """The commit's trailers as git itself parses them."""
    out = git("log", "-1", "--format=%(trailers:only,unfold)", ref, cwd=remote)
    pairs = []
    for line in out.splitlines():
        if ": " in line:
            key, _, value = line.partition(": ")
            pairs.append((key, value))
    return pairs
