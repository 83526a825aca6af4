"""Pushes that wait for the last environment of a clone, and the remote's branches seen this
cycle."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from imagebot.git import push as git_push
from imagebot.git.push import Refused
from imagebot.git.repo import EnvRepo
from imagebot.publisher.base import log


@dataclass
class _Chain:
    repo: EnvRepo
    head: str
    environments: list[str]
    paths: set[str]


@dataclass
class _BranchPush:
    repo: EnvRepo
    branch: str
    sha: str
    expect: str | None
    environment: str
    then: Callable[[], Awaitable[str]]  # what to do once pushed: open or update the PR


class PendingPushes:
    """Commit-mode commits made this cycle, chained per repo and branch, pushed at once.

    Environments that share a repo and branch (one directory each, say) each get their own
    commit — its own message and trailers — on top of the previous one, and the branch is
    pushed once when the last of them is done: 50 environments cost one push, not 50. A
    push that fails fails every environment in its chain and leaves the remote as it was.
    """

    def __init__(self) -> None:
        # Environments of different clones publish concurrently (worker threads commit and
        # push); the lock guards these collections, never a git command.
        self._lock = threading.Lock()
        self._chains: dict[tuple[str, str], _Chain] = {}
        self._branches: list[_BranchPush] = []
        self._again: list[tuple[str, str, str]] = []  # (clone, environment, why)

    def again(self, repo: EnvRepo, environment: str, why: str) -> None:
        """``environment``'s plan went stale (the branch moved, or a waiting commit changed its
        files): publish it again, re-read and re-planned, once this clone's pushes are done."""
        with self._lock:
            self._again.append((str(repo.path), environment, why))

    def take_again(self, clone: str | None = None) -> dict[str, str]:
        """The environments to publish again (of ``clone`` only, if given), with why."""
        with self._lock:
            taken = [a for a in self._again if clone is None or a[0] == clone]
            self._again = [a for a in self._again if a not in taken]
        return {environment: why for _, environment, why in taken}

    def add_branch(self, push: _BranchPush) -> None:
        """Pull-request mode: a branch to force-push (with a lease), then ``push.then``."""
        with self._lock:
            self._branches.append(push)

    def push_branches(
        self, clone: str | None = None
    ) -> tuple[list[_BranchPush], dict[str, Refused]]:
        """One ``git push`` per repo for every waiting branch (of ``clone`` only, if given):
        (pushed, failed by environment)."""
        with self._lock:
            taken = [p for p in self._branches if clone is None or str(p.repo.path) == clone]
            ids = {id(p) for p in taken}
            self._branches = [p for p in self._branches if id(p) not in ids]
        by_repo: dict[str, list[_BranchPush]] = {}
        for push in taken:
            by_repo.setdefault(str(push.repo.path), []).append(push)
        pushed: list[_BranchPush] = []
        failed: dict[str, Refused] = {}
        for pushes in by_repo.values():
            errors = git_push.push_branches(
                pushes[0].repo, [(p.sha, p.branch, p.expect) for p in pushes]
            )
            for p in pushes:
                if p.branch in errors:
                    failed[p.environment] = errors[p.branch]
                else:
                    pushed.append(p)
                    log.info("branch_pushed", environment=p.environment, branch=p.branch,
                             commit=p.sha)  # fmt: skip
        return pushed, failed

    def parent(self, repo: EnvRepo) -> str | None:
        with self._lock:
            chain = self._chains.get(_chain_key(repo))
            return chain.head if chain is not None else None

    def touches(self, repo: EnvRepo, paths: set[str]) -> bool:
        """Whether a waiting commit changed any of ``paths`` (its plan would be stale)."""
        with self._lock:
            chain = self._chains.get(_chain_key(repo))
            return chain is not None and bool(chain.paths & paths)

    def add(self, repo: EnvRepo, sha: str, environment: str, paths: set[str]) -> None:
        with self._lock:
            chain = self._chains.setdefault(_chain_key(repo), _Chain(repo, sha, [], set()))
            chain.repo, chain.head = repo, sha
            chain.environments.append(environment)
            chain.paths |= paths

    def push_all(self, clone: str | None = None) -> dict[str, Refused]:
        """Push every chain (of ``clone`` only, if given); the environments whose push
        failed, with the error."""
        with self._lock:
            keys = [k for k in self._chains if clone is None or k[0] == clone]
            chains = [self._chains.pop(k) for k in keys]
        failed: dict[str, Refused] = {}
        for chain in chains:
            refused = git_push.push(chain.repo, chain.head)
            if refused is not None:
                failed.update(dict.fromkeys(chain.environments, refused))
                continue
            log.info("pushed", commit=chain.head, branch=chain.repo.branch,
                     environments=chain.environments)  # fmt: skip
        return failed


def _chain_key(repo: EnvRepo) -> tuple[str, str]:
    return (str(repo.path), repo.branch)


class RemoteBranches:
    """The remote's branches, listed once per repo per cycle instead of once per environment;
    a branch's commits are fetched only when the clone does not hold them yet."""

    def __init__(self) -> None:
        self._heads: dict[str, dict[str, str]] = {}

    def head(self, repo: EnvRepo, branch: str) -> str | None:
        key = str(repo.path)
        if key not in self._heads:
            self._heads[key] = repo.remote_branches()
        sha = self._heads[key].get(branch)
        if sha is not None and not repo.has_commit(sha):
            repo.fetch_ref(branch)
        return sha

    def forget(self, repo: EnvRepo) -> None:
        """Someone else moved a branch: list again next time."""
        self._heads.pop(str(repo.path), None)

    def forget_all(self) -> None:
        self._heads.clear()
