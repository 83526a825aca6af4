"""The git layer: bare clone, byte-exact blobs, atomic push, race detection, redaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagebot.errors import GitError
from imagebot.git.push import is_race, push, push_status
from imagebot.git.repo import EnvRepo, redact
from tests.support.gitenv import commits, git, make_remote, message, push_files, show

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CRLF = b"kind: Pod\r\nspec:\r\n  containers:\r\n  - image: app:1.0\r\n"


def test_commit_and_push_keep_bytes_exactly(tmp_path: Path) -> None:
    """CRLF content and an executable bit survive a commit through the bare clone."""
    remote = make_remote(tmp_path, {"envs/dev/pod.yaml": CRLF, "envs/dev/other.yml": b"a: 1"})
    repo = EnvRepo(str(remote), "main", tmp_path / "cache")
    repo.fetch()
    entries = {e.path: e for e in repo.files("envs/dev")}
    assert set(entries) == {"envs/dev/pod.yaml", "envs/dev/other.yml"}
    assert repo.read(entries["envs/dev/pod.yaml"]) == CRLF
    new = CRLF.replace(b"app:1.0", b"app:1.1")
    sha = repo.commit(
        {"envs/dev/pod.yaml": new},
        message="bump\n",
        author_name="bot",
        author_email="b@x",
        when=WHEN,
    )
    assert len(commits(remote)) == 1, "nothing reaches the remote before push"
    assert push(repo, sha) is None
    assert show(remote, "envs/dev/pod.yaml") == new
    assert show(remote, "envs/dev/other.yml") == b"a: 1"
    assert message(remote).strip() == "bump"
    assert (
        git("log", "-1", "--format=%aI %an", cwd=remote).strip() == "2026-01-02T03:04:05+00:00 bot"
    )
    assert repo.head() == sha


def test_push_race_is_detected_and_leaves_remote_untouched(tmp_path: Path) -> None:
    """When a human pushes after our fetch, our push is refused as a race (the branch
    moved) and their commit stays."""
    remote = make_remote(tmp_path, {"a.yaml": b"x: 1\n"})
    repo = EnvRepo(str(remote), "main", tmp_path / "cache")
    repo.fetch()
    human = push_files(remote, {"b.yaml": b"y: 2\n"}, message="human change")
    sha = repo.commit(
        {"a.yaml": b"x: 2\n"}, message="bot", author_name="b", author_email="b@x", when=WHEN
    )
    refused = push(repo, sha)
    assert refused is not None and refused.moved
    assert "rejected: the branch moved ([rejected] fetch first)" in refused.message
    assert commits(remote)[0] == human
    assert repo.fetch() == human


@pytest.mark.parametrize(
    ("porcelain", "race"),
    [
        ("!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)", True),
        ("!\trefs/heads/main:refs/heads/main\t[rejected] (non-fast-forward)", True),
        ("!\trefs/heads/b:refs/heads/b\t[rejected] (stale info)", True),  # a stale lease
        ("!\trefs/heads/main:refs/heads/main\t[remote rejected] (failed to update ref)", True),
        ("!\trefs/heads/main:refs/heads/main\t[remote rejected] (cannot lock ref 'x')", True),
        (
            "!\trefs/heads/main:refs/heads/main\t[remote rejected] (pre-receive hook declined)",
            False,
        ),
        ("!\trefs/heads/main:refs/heads/main\t[remote rejected] (permission denied)", False),
    ],
)
def test_only_git_own_verdicts_make_a_push_race(porcelain: str, race: bool) -> None:
    """A refused push is a race (worth a retry on the new head) only when git's porcelain
    status says the branch moved or its lock was held, never for a hook or a permission."""
    status = push_status(f"To /srv/env.git\n{porcelain}\nDone\n")
    assert status is not None and is_race(status) is race


def test_missing_branch_is_a_git_error_naming_it(tmp_path: Path) -> None:
    """Fetching a branch that does not exist names the branch and the remote."""
    remote = make_remote(tmp_path, {"a.yaml": b"x: 1\n"})
    repo = EnvRepo(str(remote), "release", tmp_path / "cache")
    with pytest.raises(GitError, match="release"):
        repo.fetch()


def test_credentials_in_urls_are_redacted(tmp_path: Path) -> None:
    """A token in a remote URL never appears in an error message."""
    url = "https://bot:s3cr3t-token@127.0.0.1:1/acme/env.git"
    assert redact(url) == "https://***@127.0.0.1:1/acme/env.git"
    repo = EnvRepo(url, "main", tmp_path / "cache")
    with pytest.raises(GitError) as info:
        repo.fetch()
    assert "s3cr3t-token" not in str(info.value)
    assert "***@127.0.0.1:1" in str(info.value)


def test_read_all_returns_every_blob_byte_exact(tmp_path: Path) -> None:
    """One `cat-file --batch` answers as reading file by file does: CRLF, binary bytes,
    lines that look like batch headers, empty files and two paths sharing a blob."""
    files = {
        "a.yaml": CRLF,
        "b.yaml": b"\x00\xff binary\nda39a3ee5e6b4b0d3255bfef95601890afd80709 blob 3\n",
        "c.yaml": b"",
        "d/same.yaml": b"x: 1\n",
        "d/twin.yaml": b"x: 1\n",
    }
    remote = make_remote(tmp_path, files)
    repo = EnvRepo(str(remote), "main", tmp_path / "cache")
    repo.fetch()
    entries = repo.files(".")
    contents = repo.read_all(entries)
    assert {e.path: contents[e.blob] for e in entries} == files
    assert all(repo.read(e) == contents[e.blob] for e in entries)
    assert repo.read_all([]) == {}
    repo.close()


def test_read_all_names_the_file_whose_blob_is_missing(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.yaml": b"a: 1\n"})
    repo = EnvRepo(str(remote), "main", tmp_path / "cache")
    repo.fetch()
    (entry,) = repo.files(".")
    gone = type(entry)(path="envs/gone.yaml", mode=entry.mode, blob="1" * 40)
    with pytest.raises(GitError, match=r"envs/gone\.yaml"):
        repo.read_all([entry, gone])
