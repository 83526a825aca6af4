"""Pushing a clone's commits to the remote, and what a refused push means.

A push returns a :class:`Refused` instead of raising: whether the branch moved under us
(someone else pushed first; the publisher re-reads, re-plans and pushes again) or the remote
said no (a hook, permissions, a timeout; an error to report) is read from
``git push --porcelain``'s status line by one classifier, :func:`refusal`, never from the
remote's free text (a hook may say anything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagebot.errors import GitError
from imagebot.git.repo import EnvRepo, redact, timed_out


@dataclass(frozen=True)
class Refused:
    """A push that did not land, and why."""

    message: str
    moved: bool
    """Someone else moved the branch since our fetch, or held its lock at the same moment:
    worth another try on the new head. Never true for a hook's or a permission's refusal."""


def push(repo: EnvRepo, sha: str) -> Refused | None:
    """Fast-forward the remote branch to ``sha`` (and the clone's record of it)."""
    try:
        with repo.locked():
            code, out, err = repo.try_git(
                "push", "--porcelain", "origin", f"{sha}:refs/heads/{repo.branch}"
            )
            if code != 0:
                return refusal(repo, f"push to {repo.branch!r}", out, err)
            ref = f"refs/remotes/origin/{repo.branch}"
            repo.run_git("update-ref", ref, sha, what="record pushed head")
    except GitError as exc:  # the clone stayed locked, or a stale lock holds its ref
        return Refused(str(exc), moved=False)
    return None


def push_branches(repo: EnvRepo, updates: list[tuple[str, str, str | None]]) -> dict[str, Refused]:
    """Point each remote ``branch`` at ``sha`` in one ``git push`` — forced, but only while
    it still is at ``expect`` (None: only if it does not exist). The branches that were not
    updated, with why."""
    if not updates:
        return {}
    leases = [f"--force-with-lease=refs/heads/{b}:{e or ''}" for _, b, e in updates]
    refspecs = [f"{sha}:refs/heads/{b}" for sha, b, _ in updates]
    try:
        code, out, err = _git_push(repo, *leases, "origin", *refspecs)
    except GitError as exc:  # the clone stayed locked
        return {b: Refused(str(exc), moved=False) for _, b, _ in updates}
    if code == 0:
        return {}
    refused: dict[str, Refused] = {}
    for line in out.splitlines():
        flag, _, rest = line.partition("\t")
        if flag == "!":
            branch = rest.partition("\t")[0].partition(":")[2].removeprefix("refs/heads/")
            refused[branch] = refusal(repo, f"push of {branch!r}", line, err)
    if not refused:  # no per-ref report: the push as a whole failed
        whole = refusal(repo, "push", out, err)
        return {b: whole for _, b, _ in updates}
    return refused


def delete_branch(repo: EnvRepo, branch: str, *, expect: str) -> Refused | None:
    """Delete remote ``branch`` if it still points at ``expect``."""
    lease = f"--force-with-lease=refs/heads/{branch}:{expect}"
    code, out, err = _git_push(repo, lease, "origin", f":refs/heads/{branch}")
    return refusal(repo, f"delete of {branch!r}", out, err) if code != 0 else None


def _git_push(repo: EnvRepo, *args: str) -> tuple[int, str, str]:
    with repo.locked():
        return repo.try_git("push", "--porcelain", *args)


def refusal(repo: EnvRepo, what: str, out: str, err: str) -> Refused:
    """What a failed ``git push --porcelain`` (stdout ``out``, stderr ``err``) means: a race
    when the status says someone else moved the ref (a lease that went stale is one), else
    what git or the remote said."""
    where = f"{redact(repo.url)}: {what}"
    status = push_status(out)
    if status is not None and is_race(status):
        return Refused(f"{where} rejected: the branch moved ({status})", moved=True)
    if timed_out(err):
        return Refused(f"{where}: no answer within {repo.timeout:g}s (git_timeout)", moved=False)
    said = remote_text(err)
    if status is not None:
        return Refused(f"{where} rejected: {status}" + (f": {said}" if said else ""), moved=False)
    return Refused(f"{where} failed: {redact(' '.join(err.split()))}", moved=False)


_PORCELAIN_REJECTED = re.compile(r"^!\t[^\t]*\t(\[[a-z ]+\])(?: \((.*)\))?$", re.M)


def push_status(stdout: str) -> str | None:
    """The flag and reason of the rejected ref in ``git push --porcelain`` output, e.g.
    ``[rejected] fetch first`` or ``[remote rejected] pre-receive hook declined``."""
    m = _PORCELAIN_REJECTED.search(stdout)
    if m is None:
        return None
    return f"{m.group(1)} {m.group(2)}" if m.group(2) else m.group(1)


def is_race(status: str) -> bool:
    """A rejection that means "someone else pushed first": git's own non-fast-forward
    verdicts, and the remote failing to lock or update the ref because another push held it.
    A hook's rejection ("pre-receive hook declined") is never a race, whatever it says."""
    flag, _, reason = status.partition("] ")
    if flag == "[rejected":
        return reason in ("fetch first", "non-fast-forward", "stale info", "")
    if flag == "[remote rejected":
        return reason.startswith(("cannot lock ref", "failed to update ref", "failed to lock"))
    return False


def remote_text(stderr: str) -> str:
    """What the remote (a hook) said: the ``remote:`` lines of git's stderr, joined."""
    lines = [
        line.removeprefix("remote:").strip()
        for line in stderr.splitlines()
        if line.startswith("remote:")
    ]
    return redact(" / ".join(line for line in lines if line))
