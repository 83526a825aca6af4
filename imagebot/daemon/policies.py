"""The policy directory as the daemon sees it, reloaded when it changes.

Kubernetes updates a mounted ConfigMap by writing a new timestamped directory and swapping
the ``..data`` symlink; each file is a symlink through it. Polling the files' status
(following links) and ``..data``'s target sees both that and plain edits, on every file
system, without inotify. A file that stops loading keeps its last good version running;
its problem is reported until it is fixed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from imagebot import config, logs
from imagebot.core.policy import LoadedPolicy
from imagebot.errors import PolicyError

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
        self.state = PolicyState(
            environments=dict(sorted(envs.items())),
            problems=fresh.problems,
            kept=tuple(sorted(p.name for p in kept.values())),
        )
        for problem in fresh.problems:
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
