"""The policy directory as the daemon sees it, reloaded when it changes.

Kubernetes updates a mounted ConfigMap by writing a new timestamped directory and swapping
the ``..data`` symlink; each file is a symlink through it. Polling the files' status
(following links) and ``..data``'s target sees both that and plain edits, on every file
system, without inotify. A file that stops loading keeps its last good version running;
its problem is reported until it is fixed.

Policies from git (:class:`PolicyRepository`) are the same directory in a checkout that
every look fetches first; their problems also name the commit.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from imagebot import config, logs
from imagebot.core.policy import LoadedPolicy
from imagebot.errors import GitError, PolicyError
from imagebot.policysource import Checkout, GitPolicies

log = logs.get_logger("imagebot.daemon")

Fingerprint = tuple[object, ...]


@dataclass(frozen=True)
class PolicyState:
    """Environments to run (by name) and every problem of the last load."""

    environments: dict[str, LoadedPolicy] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    """Environments still running their last good version because their file broke."""

    @property
    def loaded(self) -> bool:
        return bool(self.environments)


def fingerprint(directory: Path) -> Fingerprint:
    """What changes whenever a policy file (or the ConfigMap behind it) changes."""
    parts: list[object] = []
    with contextlib.suppress(OSError):
        parts.append(os.readlink(directory / "..data"))
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        return (f"unreadable: {exc}",)
    for name in names:
        try:
            st = (directory / name).stat()
        except OSError:
            continue
        parts.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(parts)


class PolicyDirectory:
    """Loads ``directory``, keeping each file's last good version."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._good: dict[str, LoadedPolicy] = {}  # by file path
        self._seen: Fingerprint | None = None
        self.state = PolicyState()

    def changed(self) -> bool:
        return fingerprint(self.directory) != self._seen

    def load(self) -> PolicyState:
        """Read the directory again; a file that fails keeps its last good version."""
        self._seen = fingerprint(self.directory)
        try:
            fresh = config.load_policies(self.directory)
            files = {str(p) for p in config.policy_files(self.directory)}
        except PolicyError as exc:
            fresh, files = config.PolicySet((), tuple(exc.problems)), set(self._good)
        good = {p.source: p for p in fresh.environments}
        names = {p.name for p in fresh.environments}
        kept = {
            path: old
            for path, old in self._good.items()
            if path in files and path not in good and old.name not in names
        }
        self._good = {**good, **kept}
        envs = {p.name: p for p in self._good.values()}
        problems = self.located(fresh.problems)
        self.state = PolicyState(
            environments=dict(sorted(envs.items())),
            problems=problems,
            kept=tuple(sorted(p.name for p in kept.values())),
        )
        for problem in problems:
            log.error("policy_problem", detail=problem)
        for name in self.state.kept:
            log.warning("policy_kept", environment=name, reason="file no longer loads")
        log.info(
            "policies_loaded",
            directory=str(self.directory),
            environments=sorted(envs),
            problems=len(fresh.problems),
        )
        return self.state

    def located(self, problems: tuple[str, ...]) -> tuple[str, ...]:
        return problems

    def fetched_with(self, repo_urls: list[str]) -> bool:
        """Whether fetching these repositories fetches the policies too."""
        return False


class PolicyRepository(PolicyDirectory):
    """Policies from git: each look fetches the branch, a load reads the checkout. A fetch
    that fails keeps the policies loaded last and reports why."""

    def __init__(self, source: GitPolicies, cache_dir: Path, *, timeout: float) -> None:
        super().__init__(source.directory(cache_dir))
        self.source, self.cache_dir, self.timeout = source, cache_dir, timeout
        self.checkout: Checkout | None = None
        self.failure: str | None = None

    def changed(self) -> bool:
        """Fetch (blocking: the daemon calls this in a worker thread); whether to load."""
        try:
            self.checkout = self.source.fetch(self.cache_dir, timeout=self.timeout)
        except GitError as exc:
            if self.failure is None:
                log.error("policy_fetch_failed", source=str(self.source), error=str(exc))
                self.state = replace(self.state, problems=(*self.state.problems, str(exc)))
            self.failure = str(exc)
            return False
        recovered, self.failure = self.failure is not None, None
        return recovered or super().changed()

    def load(self) -> PolicyState:
        if self.checkout is None and not self.changed():
            return self.state  # the first fetch failed: nothing to run, the failure reported
        return super().load()

    def located(self, problems: tuple[str, ...]) -> tuple[str, ...]:
        return self.checkout.located(problems) if self.checkout else problems

    def fetched_with(self, repo_urls: list[str]) -> bool:
        return self.source.url in repo_urls
