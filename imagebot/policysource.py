"""Policies from git: ``--policies git+<url>#<branch>:<path>``.

The policy files live in a repository (usually the environment repo itself), so a change to
them is reviewed like any other change. The branch is fetched (``--depth 1``) into a
checkout under the cache directory and the policies are read from ``<path>`` in it, like a
policy directory; every problem names the file, its line and the commit it was read from.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from imagebot.errors import GitError, PolicyError
from imagebot.git.repo import redact

PREFIX = "git+"
_SOURCE = re.compile(r"^git\+(?P<url>[^#]+?)(?:#(?P<branch>[^:]*)(?::(?P<path>.*))?)?$")


@dataclass(frozen=True)
class GitPolicies:
    url: str
    """What git fetches: ``https://…``, ``ssh://…``, ``file://…``."""
    branch: str = "HEAD"
    path: str = ""
    """The policy directory inside the repository ("" for its root)."""

    @classmethod
    def parse(cls, text: str) -> GitPolicies:
        m = _SOURCE.match(text)
        path = (m["path"] or "").strip("/") if m else ""
        if not m or ".." in path.split("/") or not m["url"].split("://", 1)[-1]:
            raise PolicyError(
                [f"--policies {redact(text)}: expected git+URL#BRANCH:PATH, e.g."
                 " git+https://git.example.com/acme/env.git#main:policies"]
            )  # fmt: skip
        return cls(url=m["url"], branch=m["branch"] or "HEAD", path=path)

    def __str__(self) -> str:
        return f"{PREFIX}{redact(self.url)}#{self.branch}:{self.path}"

    def checkout_dir(self, cache_dir: Path) -> Path:
        key = hashlib.sha256(f"{self.url}#{self.branch}".encode()).hexdigest()[:16]
        return cache_dir / "policy-repos" / key

    def directory(self, cache_dir: Path) -> Path:
        """Where the policy files are once fetched."""
        return self.checkout_dir(cache_dir) / self.path

    def fetch(self, cache_dir: Path, *, timeout: float) -> Checkout:
        """Fetch the branch and check it out."""
        work = self.checkout_dir(cache_dir)
        if not (work / ".git").is_dir():
            work.mkdir(parents=True, exist_ok=True)
            self._git(work, timeout, "init", "--quiet")
        self._git(work, timeout, "fetch", "--quiet", "--depth=1", "--", self.url, self.branch)
        self._git(work, timeout, "checkout", "--quiet", "--force", "--detach", "FETCH_HEAD")
        self._git(work, timeout, "clean", "--quiet", "-d", "--force", "-x")
        commit = self._git(work, timeout, "rev-parse", "HEAD").strip()
        return Checkout(root=work, directory=self.directory(cache_dir), commit=commit)

    def _git(self, work: Path, timeout: float, *args: str) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
        what = f"policies from {self}"
        try:
            done = subprocess.run(
                ["git", "-C", str(work), *args], capture_output=True, env=env, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"{what}: git {args[0]} timed out after {timeout:g}s") from None
        if done.returncode:
            error = redact(done.stderr.decode("utf-8", "replace").strip())
            raise GitError(f"{what}: git {args[0]} failed: {error}")
        return done.stdout.decode("utf-8", "replace")


def source(text: str) -> Path | GitPolicies:
    """A ``--policies`` value: a directory, or a ``git+`` source."""
    return GitPolicies.parse(text) if text.startswith(PREFIX) else Path(text)


@dataclass(frozen=True)
class Checkout:
    root: Path
    directory: Path
    """The policy directory in the checkout."""
    commit: str

    def located(self, problems: tuple[str, ...]) -> tuple[str, ...]:
        """``problems`` naming files by their path in the repository, and the commit."""
        root = f"{self.root}/"
        return tuple(f"{p.replace(root, '')} (commit {self.commit[:12]})" for p in problems)
