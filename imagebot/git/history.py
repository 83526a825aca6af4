"""The history of an environment's path, read from its clone: the first-parent commits that
touched it, each with its trailers and the image references in the files it changed (the
oldest read commit is a snapshot of every file). Promotion and holds are replayed from it
(``imagebot.core.promotion``).

The cache keeps what was read, so a later read asks git only for the commits since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import astuple
from datetime import UTC, datetime

from imagebot.cache import Cache
from imagebot.core import rewrite
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.history import HistoryCommit, Ref, fold_history
from imagebot.errors import EditError, GitError
from imagebot.git.repo import EXTRA_NAMES, EnvRepo, FileEntry

#: How many commits touching an environment's path are read back at most.
HISTORY_LIMIT = 1000


def read_history(
    loaded: LoadedPolicy, repo: EnvRepo, cache: Cache | None = None
) -> list[HistoryCommit]:
    """The environment's history from its fetched clone, through ``cache``."""
    repositories = {i.normalized_repository for i in loaded.policy.images}
    return path_history(repo, loaded.policy.repo.path, repositories, cache=cache)


def history_key(repo: EnvRepo, under: str, repositories: Collection[str], limit: int) -> str:
    """What the history of ``under`` in ``repo``'s clone is cached under."""
    key = [str(repo.path), repo.branch, under, sorted(repositories), limit]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def path_history(
    repo: EnvRepo,
    under: str,
    repositories: Collection[str],
    *,
    cache: Cache | None = None,
    limit: int = HISTORY_LIMIT,
) -> list[HistoryCommit]:
    """The first-parent commits of the fetched branch that touched ``under``, oldest
    first, at most ``limit``, each with the image references (of ``repositories``) in the
    files it changed; the oldest is a snapshot of every file.

    With ``cache`` only commits since the last call are read: the cache keeps what was
    read before. A missing, stale or unreadable entry costs a full read, never a wrong
    answer: it is used only when its head is an ancestor of the new head.
    """
    head = repo.fetched or repo.head()
    key = history_key(repo, under, repositories, limit)
    cached = _load_history(cache, key)
    if cached is not None and cached[0] == head:
        return cached[1]
    commits: list[HistoryCommit] | None = None
    if cached is not None and repo.is_ancestor(cached[0], head):
        new = _log(repo, f"{cached[0]}..{head}", under, repositories, limit)
        if len(new) < limit:  # else a gap may hide between old and new: read afresh
            commits = fold_history([*cached[1], *new], limit)
    if commits is None:
        commits = _log(repo, head, under, repositories, limit)
        if commits:
            commits[0] = _snapshot(repo, commits[0], under, repositories)
    if cache is not None:
        _save_history(cache, key, head, commits)
    return commits


def _log(
    repo: EnvRepo, revisions: str, under: str, repositories: Collection[str], limit: int
) -> list[HistoryCommit]:
    out = repo.run_git(
        "log",
        "--first-parent",
        "--reverse",
        f"--max-count={limit}",
        "-z",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--diff-merges=first-parent",
        "--format=%x1e%H%x1f%P%x1f%ct%x1f%an <%ae>%x1f%(trailers:only,unfold)%x1f",
        revisions,
        "--",
        _pathspec(under),
        what=f"read the history of {under!r}",
    )
    records = [record.split("\x1f", 5) for record in out.split("\x1e")[1:]]
    # Every changed file's content in one `cat-file --batch`, not a round trip per file.
    changed = [
        FileEntry(path=path, mode=0o100644, blob=meta.split()[3])
        for *_, raw in records
        for meta, path in _pairs(raw)
        if meta.startswith(":") and _is_manifest(path) and set(meta.split()[3]) != {"0"}
    ]
    try:
        contents = repo.read_all(changed)
    except GitError:
        contents = {}  # each file is then read (or found unreadable) on its own
    commits = []
    for sha, parents, stamp, author, trailer_text, raw in records:
        for merged in parents.split()[1:]:
            # A merged pull request: the trailers are on the branch it merged.
            trailer_text += repo.run_git(
                "log", "-1", "--format=%(trailers:only,unfold)", merged,
                what=f"read the trailers of {merged[:12]}",
            )  # fmt: skip
        trailers = tuple(
            (k.strip(), v.strip())
            for k, sep, v in (line.partition(":") for line in trailer_text.splitlines())
            if sep
        )
        files: dict[str, tuple[Ref, ...]] = {}
        for meta, path in _pairs(raw):
            blob = meta.split()[3] if meta.startswith(":") else ""
            if _is_manifest(path):
                files[path] = _refs(repo, path, blob, repositories, contents.get(blob))
        commits.append(
            HistoryCommit(
                sha=sha,
                time=datetime.fromtimestamp(int(stamp), UTC),
                author=author,
                trailers=trailers,
                files=files,
            )
        )
    return commits


def _pairs(raw: str) -> list[tuple[str, str]]:
    """(raw diff line, path) of each file in one commit's ``git log --raw -z`` output."""
    fields = raw.strip("\n\0").split("\0")
    return list(zip(fields[::2], fields[1::2], strict=False))


def _snapshot(
    repo: EnvRepo, commit: HistoryCommit, under: str, repositories: Collection[str]
) -> HistoryCommit:
    args = ["ls-tree", "-r", "-z", "--full-tree", commit.sha, "--", _pathspec(under)]
    out = repo.run_git(*args, what=f"list files under {under!r} at {commit.sha[:12]}")
    entries = [
        FileEntry(path=path, mode=0o100644, blob=meta.split()[2])
        for meta, _, path in (record.partition("\t") for record in out.split("\0"))
        if _is_manifest(path) and meta.split()[1] == "blob"
    ]
    try:
        contents = repo.read_all(entries)
    except GitError:
        contents = {}  # each file is then read (or found unreadable) on its own
    files = {
        e.path: _refs(repo, e.path, e.blob, repositories, contents.get(e.blob)) for e in entries
    }
    return HistoryCommit(
        sha=commit.sha,
        time=commit.time,
        author=commit.author,
        trailers=commit.trailers,
        files=files,
        snapshot=True,
    )


def _refs(
    repo: EnvRepo, path: str, blob: str, repositories: Collection[str], data: bytes | None = None
) -> tuple[Ref, ...]:
    """The image references in one blob (``data``, when already read); none for a
    deleted, unreadable or unsafe file."""
    if not blob or set(blob) == {"0"}:
        return ()
    try:
        if data is None:
            data = repo.read(FileEntry(path=path, mode=0o100644, blob=blob))
        text = data.decode("utf-8")
        if not rewrite.mentions(text, repositories):
            return ()
        targets = rewrite.locate(text, source=path, repositories=repositories)
    except (GitError, UnicodeDecodeError, EditError):
        return ()
    return tuple(
        Ref(path, t.line, t.repository, t.policy, t.tag, t.digest)
        for t in targets
        if t.problem is None
    )


#: What a cached history looks like: 2 is one list per commit (1 was an object per commit).
_HISTORY_FORMAT = 2


def _is_manifest(path: str) -> bool:
    """A file the engine reads (see ``files``), so history sees what the cycle edits."""
    return path.endswith((".yaml", ".yml")) or path.rpartition("/")[2] in EXTRA_NAMES


def _pathspec(under: str) -> str:
    return "." if under in ("", ".") else under.strip("/") + "/"


def _load_history(cache: Cache | None, key: str) -> tuple[str, list[HistoryCommit]] | None:
    text = cache.history(key) if cache is not None else None
    if text is None:
        return None
    try:
        doc = json.loads(text)
        if doc.get("format") != _HISTORY_FORMAT:
            return None
        commits = [
            HistoryCommit(
                sha,
                datetime.fromisoformat(time),
                author,
                tuple((k, v) for k, v in trailers),
                {f: tuple(Ref(*r) for r in refs) for f, refs in files.items()},
                snapshot,
            )
            for sha, time, author, trailers, files, snapshot in doc["commits"]
        ]
        return str(doc["head"]), commits
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a broken entry is read again from git


def _save_history(cache: Cache, key: str, head: str, commits: list[HistoryCommit]) -> None:
    rows = [
        [
            c.sha,
            c.time.isoformat(),
            c.author,
            c.trailers,
            {f: [astuple(r) for r in refs] for f, refs in c.files.items()},
            c.snapshot,
        ]
        for c in commits
    ]
    cache.store_history(key, json.dumps({"format": _HISTORY_FORMAT, "head": head, "commits": rows}))
