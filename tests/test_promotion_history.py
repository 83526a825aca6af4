"""The history reader: commits touching a path, trailers and references, cached safely."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imagebot.cache import Cache
from imagebot.core.policy import ImagePolicy
from imagebot.core.promotion.history import runs_of
from imagebot.git.history import HISTORY_LIMIT, history_key, path_history
from imagebot.git.repo import EnvRepo
from tests.support.gitenv import git, make_remote, push_files

REPO = "ghcr.io/acme/app"
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
APP = ImagePolicy(name="app", repository=REPO)


def manifest(tag: str) -> bytes:
    return f"containers:\n  - name: app\n    image: {REPO}:{tag}\n".encode()


def setup(tmp_path: Path) -> tuple[Path, EnvRepo]:
    remote = make_remote(
        tmp_path,
        {"envs/dev/app.yaml": manifest("1.0.0"), "envs/prod/app.yaml": manifest("0.9.0")},
        when=T0,
    )
    repo = EnvRepo(str(remote), "main", tmp_path / "clone")
    return remote, repo


def tags(
    repo: EnvRepo, cache: Cache | None, limit: int = 1000
) -> list[tuple[str | None, datetime]]:
    repo.fetch()
    history = path_history(repo, "envs/dev", {REPO}, cache=cache, limit=limit)
    return [(r.tag, r.start) for r in runs_of(APP, history)]


def test_reads_only_commits_touching_the_path_with_trailers(tmp_path: Path) -> None:
    """Commits elsewhere in the repo are not read; trailers and committer times are."""
    remote, repo = setup(tmp_path)
    push_files(remote, {"envs/prod/app.yaml": manifest("1.0.0")}, message="prod", when=T0)
    sha = push_files(
        remote,
        {"envs/dev/app.yaml": manifest("1.1.0")},
        message="bump\n\nImagebot-Environment: dev\nImagebot-Image: ghcr.io/acme/app",
        when=T0 + timedelta(hours=1),
    )
    repo.fetch()
    history = path_history(repo, "envs/dev", {REPO})
    assert [c.sha for c in history][1:] == [sha]
    assert history[0].snapshot and not history[1].snapshot
    assert history[1].trailers == (
        ("Imagebot-Environment", "dev"),
        ("Imagebot-Image", "ghcr.io/acme/app"),
    )
    assert history[1].by_imagebot and not history[0].by_imagebot
    assert history[1].time == T0 + timedelta(hours=1)
    assert [(r.tag, r.start) for r in runs_of(APP, history)] == [
        ("1.0.0", T0),
        ("1.1.0", T0 + timedelta(hours=1)),
    ]


def test_incremental_reads_equal_a_full_read_and_a_lost_cache(tmp_path: Path) -> None:
    """Reading through the cache cycle after cycle gives what a fresh read gives; the entry
    outlives the process, and a broken one is read again from git."""
    remote, repo = setup(tmp_path)
    cache = Cache(tmp_path / "cache.sqlite")
    assert tags(repo, cache) == [("1.0.0", T0)]
    for n, tag in enumerate(("1.1.0", "1.2.0", "1.1.0"), start=1):
        push_files(
            remote, {"envs/dev/app.yaml": manifest(tag)}, message=tag, when=T0 + timedelta(hours=n)
        )
        cached = tags(repo, cache)
        assert cached == tags(repo, None)
    assert [t for t, _ in cached] == ["1.0.0", "1.1.0", "1.2.0", "1.1.0"]
    cache.close()
    cache = Cache(tmp_path / "cache.sqlite")
    key = history_key(repo, "envs/dev", {REPO}, HISTORY_LIMIT)
    stored = cache.history(key)
    assert stored is not None
    assert json.loads(stored)["head"] == git("rev-parse", "main", cwd=remote).strip()
    cache.store_history(key, "{not json")
    assert tags(repo, cache) == cached, "a broken cache is read again from git"
    cache.close()


def test_rewritten_branch_ignores_the_cache(tmp_path: Path) -> None:
    """After a force-push the cached head is no ancestor: history is read afresh, not merged."""
    remote, repo = setup(tmp_path)
    cache = Cache(":memory:")
    push_files(
        remote,
        {"envs/dev/app.yaml": manifest("1.5.0")},
        message="bad",
        when=T0 + timedelta(hours=1),
    )
    assert [t for t, _ in tags(repo, cache)] == ["1.0.0", "1.5.0"]
    work = next(p for p in tmp_path.iterdir() if p.name.startswith("human-"))
    git("fetch", "--quiet", "origin", cwd=work)
    git("reset", "--quiet", "--hard", "origin/main~1", cwd=work)
    (work / "envs/dev/app.yaml").write_bytes(manifest("1.2.0"))
    git("commit", "--quiet", "-am", "rewritten", cwd=work)
    git("push", "--quiet", "--force", "origin", "HEAD:main", cwd=work)
    assert [t for t, _ in tags(repo, cache)] == ["1.0.0", "1.2.0"]


def test_history_is_bounded_and_the_oldest_read_commit_is_a_snapshot(tmp_path: Path) -> None:
    """With a limit of 2, only the last two commits are read; the first stands for the files
    as they were then, so the running version is still known."""
    remote, repo = setup(tmp_path)
    cache = Cache(":memory:")
    for n, tag in enumerate(("1.1.0", "1.2.0", "1.3.0"), start=1):
        push_files(
            remote,
            {"envs/dev/notes.yaml": f"n: {n}\n".encode()},
            message=f"n{n}",
            when=T0 + timedelta(hours=n),
        )
        push_files(
            remote,
            {"envs/dev/app.yaml": manifest(tag)},
            message=tag,
            when=T0 + timedelta(hours=n, minutes=30),
        )
        assert tags(repo, cache, limit=2) == tags(repo, None, limit=2)
    assert tags(repo, cache, limit=2) == [
        ("1.2.0", T0 + timedelta(hours=3)),
        ("1.3.0", T0 + timedelta(hours=3, minutes=30)),
    ]


def test_merged_pull_request_counts_as_imagebot_at_merge_time(tmp_path: Path) -> None:
    """A merge commit of a branch whose tip carries imagebot's trailers is imagebot's change,
    dated when it was merged (that is when the environment started running it)."""
    remote, repo = setup(tmp_path)
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "imagebot/dev", cwd=work)
    (work / "envs/dev/app.yaml").write_bytes(manifest("1.1.0"))
    opened = {"GIT_COMMITTER_DATE": f"{int((T0 + timedelta(hours=1)).timestamp())} +0000"}
    git("commit", "--quiet", "-am", "bump\n\nImagebot-Environment: dev", cwd=work, env=opened)
    git("checkout", "--quiet", "main", cwd=work)
    merged = {"GIT_COMMITTER_DATE": f"{int((T0 + timedelta(hours=5)).timestamp())} +0000"}
    git(
        "merge",
        "--quiet",
        "--no-ff",
        "-m",
        "Merge pull request #7",
        "imagebot/dev",
        cwd=work,
        env=merged,
    )
    git("push", "--quiet", "origin", "main", cwd=work)
    repo.fetch()
    history = path_history(repo, "envs/dev", {REPO})
    assert history[-1].by_imagebot
    assert [(r.tag, r.start, r.by_imagebot) for r in runs_of(APP, history)] == [
        ("1.0.0", T0, False),
        ("1.1.0", T0 + timedelta(hours=5), True),
    ]
