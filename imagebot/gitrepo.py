"""The environment repo, through GitPython, without a work tree.

imagebot keeps a bare clone per environment repo and reads and writes *blobs*: files are
read with ``cat-file`` and committed by building a tree from the fetched branch plus the
edited blobs. No checkout means no ``core.autocrlf``/``.gitattributes`` conversion can
touch a byte (the byte-exact promise holds for what is in git, not for a work tree), no
stale files, and a monorepo costs only the blobs imagebot actually reads.

A push that loses a race (the branch moved since our fetch) raises :class:`PushRejected`;
the engine re-fetches, re-plans on the new head and tries again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path

import git
from git.index.typ import BaseIndexEntry
from gitdb import IStream

from imagebot.errors import GitError

#: File names read whatever their suffix: kustomize (and Flux) accept a kustomization file
#: named ``Kustomization`` beside ``kustomization.yaml``/``.yml``.
EXTRA_NAMES = frozenset(("Kustomization",))

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(url: str) -> str:
    """A URL safe to print: any ``user:token@`` part is replaced."""
    return _USERINFO.sub("***@", url)


class PushRejected(GitError):
    """The remote branch moved since our fetch (non-fast-forward)."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # repo-relative, POSIX
    mode: int
    blob: str  # hex sha


class EnvRepo:
    """A bare clone of one environment repo's branch, kept under ``cache_dir``."""

    def __init__(self, url: str, branch: str, cache_dir: Path) -> None:
        self.url = url
        self.branch = branch
        self.path = cache_dir
        self._remote_ref = f"refs/remotes/origin/{branch}"
        try:
            if (cache_dir / "HEAD").exists():
                self._repo = git.Repo(cache_dir)
                if self._repo.remotes.origin.url != url:
                    self._repo.remotes.origin.set_url(url)
            else:
                cache_dir.mkdir(parents=True, exist_ok=True)
                self._repo = git.Repo.init(cache_dir, bare=True)
                self._repo.create_remote("origin", url)
        except git.GitError as exc:
            raise GitError(f"{redact(url)}: cannot prepare clone in {cache_dir}: {exc}") from exc
        # A daemon must never hang on a credential prompt.
        self._repo.git.update_environment(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")

    def fetch(self) -> str:
        """Fetch the branch; return the sha it points at."""
        self._git(
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
            f"+refs/heads/{self.branch}:{self._remote_ref}",
            what=f"fetch branch {self.branch!r}",
        )
        return self.head()

    def head(self) -> str:
        try:
            return self._repo.rev_parse(self._remote_ref).hexsha
        except (git.BadName, ValueError) as exc:
            raise GitError(
                f"{redact(self.url)}: branch {self.branch!r} not fetched or missing"
            ) from exc

    def files(
        self, under: str = ".", *, suffixes: tuple[str, ...] = (".yaml", ".yml")
    ) -> list[FileEntry]:
        """Regular files below ``under`` at the fetched head whose names end in ``suffixes``
        (or are one of :data:`EXTRA_NAMES`)."""
        args = ["ls-tree", "-r", "-z", "--full-tree", self._remote_ref]
        if under not in ("", "."):
            args += ["--", under.strip("/") + "/"]
        out = self._git(*args, what=f"list files under {under!r}")
        entries = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, sha = meta.split()
            named = path.rpartition("/")[2] in EXTRA_NAMES
            if (
                kind == "blob"
                and mode in ("100644", "100755")
                and (path.endswith(suffixes) or named)
            ):
                entries.append(FileEntry(path=path, mode=int(mode, 8), blob=sha))
        return entries

    def read(self, entry: FileEntry) -> bytes:
        try:
            data: bytes = self._repo.odb.stream(bytes.fromhex(entry.blob)).read()
        except (git.GitError, ValueError) as exc:
            raise GitError(f"{redact(self.url)}: cannot read {entry.path}: {exc}") from exc
        return data

    def commit(
        self,
        changes: Mapping[str, bytes],
        *,
        message: str,
        author_name: str,
        author_email: str,
        when: datetime,
    ) -> str:
        """Commit ``changes`` (path → new content) on top of the fetched head; return the sha.

        The new commit is not on any branch until :meth:`push` succeeds, so a failed push
        leaves nothing behind.
        """
        parent = self._repo.commit(self._remote_ref)
        index = git.IndexFile.from_tree(self._repo, parent.tree)
        entries = []
        for path, data in sorted(changes.items()):
            stream = self._repo.odb.store(IStream("blob", len(data), BytesIO(data)))
            old = index.entries.get((path, 0))
            mode = old.mode if old is not None else 0o100644
            entries.append(BaseIndexEntry((mode, stream.binsha, 0, path)))
        index.add(entries, write=False)
        tree = index.write_tree()
        actor = git.Actor(author_name, author_email)
        stamp = _git_date(when)
        commit = git.Commit.create_from_tree(
            self._repo,
            tree,
            message,
            parent_commits=[parent],
            head=False,
            author=actor,
            committer=actor,
            author_date=stamp,
            commit_date=stamp,
        )
        return str(commit.hexsha)

    def push(self, sha: str) -> None:
        """Fast-forward the remote branch to ``sha``; PushRejected if it moved meanwhile."""
        try:
            self._repo.git.push("--porcelain", "origin", f"{sha}:refs/heads/{self.branch}")
        except git.GitCommandError as exc:
            text = f"{exc.stdout}\n{exc.stderr}"
            if "[rejected]" in text or "non-fast-forward" in text or "fetch first" in text:
                raise PushRejected(
                    f"{redact(self.url)}: push to {self.branch!r} rejected: the branch moved"
                ) from None
            raise GitError(
                f"{redact(self.url)}: push to {self.branch!r} failed: {_stderr(exc)}"
            ) from None
        self._git("update-ref", self._remote_ref, sha, what="record pushed head")

    def _git(self, *args: str, what: str) -> str:
        try:
            out: str = self._repo.git.execute(["git", *args], strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise GitError(f"{redact(self.url)}: cannot {what}: {_stderr(exc)}") from None
        return out


def _git_date(when: datetime) -> str:
    """Git's internal date format, ``<unix seconds> <+hhmm>``, which GitPython passes through."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{int(when.timestamp())} {sign}{hours:02d}{mins:02d}"


def _stderr(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc.stdout or exc).strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    return redact(" ".join(text.split()))
