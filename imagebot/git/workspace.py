"""An environment's files as one cycle reads them from its clone: fetch the branch (once per
clone and branch in a cycle), read the YAML files under the policy's path, locate the image
references the policy governs, and note what is wrong with them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from imagebot import config, logs
from imagebot.core import rewrite
from imagebot.core.governing import Governance, govern, locate_filter
from imagebot.core.plan import in_scope
from imagebot.core.policy import LoadedPolicy
from imagebot.errors import EditError
from imagebot.git.repo import DEFAULT_TIMEOUT as DEFAULT_GIT_TIMEOUT
from imagebot.git.repo import EnvRepo, redact

log = logs.get_logger("imagebot.git.workspace")


@dataclass(repr=False)  # asyncio formats the worker thread's future, result included
class Workspace:
    """An environment's files as read from git in this cycle."""

    repo: EnvRepo  # its ``fetched`` is the head the files were read at
    files: dict[str, str]
    targets: dict[str, list[rewrite.Target]]
    problems: list[str]
    governance: Governance


def repo_cache_dir(repos_dir: Path, url: str) -> Path:
    return repos_dir / hashlib.sha256(url.encode()).hexdigest()[:16]


def read_workspace(
    loaded: LoadedPolicy,
    repos_dir: Path,
    git_timeout: float = DEFAULT_GIT_TIMEOUT,
    fetched: set[tuple[str, str]] | None = None,
    *,
    at: str | None = None,
) -> Workspace:
    """Read an environment's files; ``fetched`` lists the branches already fetched this
    cycle, which are read as they are instead of fetched again; ``at``, a commit the clone
    holds, is read instead of the branch."""
    spec = loaded.policy.repo
    url = config.resolve_repo_url(spec.url, loaded.source)
    repo = EnvRepo(url, spec.branch, repo_cache_dir(repos_dir, url), timeout=git_timeout)
    key = (str(repo.path), spec.branch)
    if at is not None:
        head = repo.fetched = at
    elif fetched is not None and key in fetched:
        head = repo.fetched = repo.head()
    else:
        head = repo.fetch()
    if fetched is not None:
        fetched.add(key)
    # Only files that may name a watched repository are parsed; with a pattern entry or
    # defaults any reference may be governed, so every file is.
    repositories = locate_filter(loaded.policy)
    files: dict[str, str] = {}
    targets: dict[str, list[rewrite.Target]] = {}
    problems: list[str] = []
    entries = repo.files(spec.path)
    if not entries:
        problems.append(
            f"{loaded.name}: {loaded.source}: repo.path {spec.path!r} holds no YAML files"
            f" on branch {spec.branch!r} of {redact(url)}"
        )
    limit = spec.max_file_bytes
    for entry in [e for e in entries if e.size > limit]:
        # Reading a 200 MB file of comments would cost gigabytes and seconds every cycle.
        problems.append(
            f"{loaded.name}: {entry.path}: {entry.size} bytes, over repo.max_file_bytes"
            f" ({limit}); skipped"
        )
    entries = [e for e in entries if e.size <= limit]
    contents = repo.read_all(entries)
    for entry in entries:
        try:
            text = contents[entry.blob].decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{loaded.name}: {entry.path}: not UTF-8; skipped")
            continue
        if repositories is not None and not rewrite.mentions(text, repositories):
            continue
        try:
            found = rewrite.locate(text, source=entry.path, repositories=repositories)
        except EditError as exc:
            problems.append(f"{loaded.name}: {exc}; file left untouched")
            continue
        found = in_scope(loaded.policy, found)  # detect: markers, marker_namespace
        if found:
            files[entry.path] = text
            targets[entry.path] = found
    governance = govern(loaded.policy, targets)
    for image in governance.unreferenced:
        if entries:
            problems.append(
                f"{loaded.name}: image {image.name} ({image.repository}) is referenced by no"
                f" file under {spec.path}"
            )
            log.warning(
                "image_unreferenced",
                environment=loaded.name,
                image=image.name,
                repository=image.repository,
                path=spec.path,
            )
    log.info(
        "repo_read",
        environment=loaded.name,
        head=head,
        files=len(files),
        targets=sum(len(t) for t in targets.values()),
    )
    return Workspace(repo, files, targets, problems, governance)
