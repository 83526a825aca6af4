"""The environment repo, through GitPython, without a work tree.

imagebot keeps a bare clone per environment repo and reads and writes *blobs*: files are
read with ``cat-file`` and committed by building a tree from the fetched branch plus the
edited blobs. No checkout means no ``core.autocrlf``/``.gitattributes`` conversion can
touch a byte (the byte-exact promise holds for what is in git, not for a work tree), no
stale files, and a monorepo costs only the blobs imagebot actually reads.

Every git command has a timeout, and the clone is locked (a file lock beside it) while it
is created, fetched into, committed in or pushed from, so imagebot processes sharing a
cache directory take turns instead of breaking each other's refs. Pushing is
:mod:`imagebot.git.push`, signing :mod:`imagebot.git.signing`, the history of an
environment's path :mod:`imagebot.git.history`.
"""

from __future__ import annotations

import fcntl
import re
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path

import git
from git.index.typ import BaseIndexEntry
from gitdb import IStream

from imagebot import logs, progress
from imagebot.errors import GitError
from imagebot.git.signing import Signing, signed_commit

log = logs.get_logger("imagebot.git")

#: File names read whatever their suffix: kustomize (and Flux) accept a kustomization file
#: named ``Kustomization`` beside ``kustomization.yaml``/``.yml``.
EXTRA_NAMES = frozenset(("Kustomization",))

# The userinfo of a URL's authority runs to the *last* "@" before the path: a password
# with a raw "@" ("bot:S3c@ret@host") must not leave its tail in a message.
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")


def redact(url: str) -> str:
    """A URL (or a text holding URLs) safe to print: any ``user:token@`` part is replaced."""
    return _USERINFO.sub("***@", url)


#: Seconds a git command (fetch, push) may run, and a process may wait for the clone lock.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    committer_email: str
    tree: str
    parents: tuple[str, ...]
    message: str
    author: str = ""  # "name <email>"


@dataclass(frozen=True)
class FileEntry:
    path: str  # repo-relative, POSIX
    mode: int
    blob: str  # hex sha
    size: int = 0  # bytes


class EnvRepo:
    """A bare clone of one environment repo's branch, kept under ``cache_dir``."""

    def __init__(
        self, url: str, branch: str, cache_dir: Path, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url
        self.branch = branch
        self.path = cache_dir
        self.timeout = timeout
        self.fetched: str | None = None
        """The head our last fetch saw; files, reads and commits use it, not the ref, which
        another process sharing the clone may move meanwhile."""
        self._remote_ref = f"refs/remotes/origin/{branch}"
        self._lock_path = cache_dir.parent / f"{cache_dir.name}.lock"
        try:
            with self.locked():
                if (cache_dir / "HEAD").exists():
                    self._repo = git.Repo(cache_dir)
                    if self._repo.remotes.origin.url != url:
                        self._repo.remotes.origin.set_url(url)
                else:
                    cache_dir.mkdir(parents=True, exist_ok=True)
                    self._repo = git.Repo.init(cache_dir, bare=True)
                    (cache_dir / "config").chmod(0o600)
                    self._repo.create_remote("origin", url)
        except (git.GitError, ValueError) as exc:
            raise GitError(
                f"{redact(url)}: cannot prepare clone in {cache_dir}: {redact(str(exc))}"
            ) from None
        # A daemon must never hang on a credential prompt.
        self._repo.git.update_environment(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the clone's file lock, waiting at most ``timeout`` seconds for it."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as handle:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise GitError(
                            f"{redact(self.url)}: the clone in {self.path} stayed locked by"
                            f" another imagebot process for {self.timeout:g}s (git_timeout)"
                        ) from None
                    time.sleep(0.05)
            try:
                self._clear_leftovers()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _clear_leftovers(self) -> None:
        """Under the clone lock no git or GitPython of ours works in the clone, so what a killed
        one left goes: a git lock file older than the git timeout (a fresh one may be a
        human's git), and GitPython's temporary index files. The config may hold a
        credential URL: only its owner reads it."""
        now = time.time()
        if (self.path / "config").exists():
            (self.path / "config").chmod(0o600)
        locks = [*self.path.glob("*.lock"), *self.path.glob("refs/**/*.lock")]
        for path in [*locks, *self.path.glob("index?*"), *self.path.glob("tmp?*")]:
            with suppress(OSError):
                if path.suffix != ".lock" or now - path.stat().st_mtime > self.timeout:
                    path.unlink()
                    log.warning("stale_git_file_removed", path=str(path))

    def fetch(self) -> str:
        """Fetch the branch; return the sha it points at. The first fetch is the clone."""
        first = self._remote_ref not in {ref.path for ref in self._repo.refs}
        what, done = ("clone", "cloned") if first else ("fetch", "fetched")
        with (
            self.locked(),
            progress.step(log, f"{what}_started", done, f"{what} {redact(self.url)}",
                          url=redact(self.url), branch=self.branch),
        ):  # fmt: skip
            self.run_git(
                "fetch",
                "--quiet",
                "--no-tags",
                "origin",
                f"+refs/heads/{self.branch}:{self._remote_ref}",
                what=f"fetch branch {self.branch!r}",
            )
            self.fetched = self.head()
        return self.fetched

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
        args = ["ls-tree", "-r", "-z", "-l", "--full-tree", self.fetched or self._remote_ref]
        if under not in ("", "."):
            args += ["--", under.strip("/") + "/"]
        out = self.run_git(*args, what=f"list files under {under!r}")
        entries = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, sha, size = meta.split()
            named = path.rpartition("/")[2] in EXTRA_NAMES
            if (
                kind == "blob"
                and mode in ("100644", "100755")
                and (path.endswith(suffixes) or named)
            ):
                entries.append(FileEntry(path, int(mode, 8), sha, int(size)))
        return entries

    def close(self) -> None:
        """Stop the `git cat-file` process :meth:`read` keeps (GitPython would stop it only
        when the clone object is collected)."""
        self._repo.close()

    def read_all(self, entries: Collection[FileEntry]) -> dict[str, bytes]:
        """The content of every entry's blob, by blob sha, from one ``git cat-file --batch``
        (reading blob by blob costs a round trip each: 80 ms for 1,000 files)."""
        shas = list(dict.fromkeys(entry.blob for entry in entries))
        if not shas:
            return {}
        with tempfile.TemporaryFile() as wanted:
            wanted.write("".join(f"{sha}\n" for sha in shas).encode("ascii"))
            wanted.seek(0)
            try:
                out: bytes = self._repo.git.execute(
                    ["git", "cat-file", "--batch"],
                    istream=wanted,
                    stdout_as_string=False,
                    strip_newline_in_stdout=False,
                    kill_after_timeout=self.timeout,
                )
            except git.GitCommandError as exc:
                raise GitError(f"{redact(self.url)}: cannot read files: {_stderr(exc)}") from None
        found: dict[str, bytes] = {}
        pos = 0
        for sha in shas:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3 or header[0].decode("ascii") != sha:
                path = next(e.path for e in entries if e.blob == sha)
                raise GitError(f"{redact(self.url)}: cannot read {path}: blob {sha} not found")
            size = int(header[2])
            found[sha] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1  # the content is followed by a newline
        return found

    def read(self, entry: FileEntry) -> bytes:
        try:
            data: bytes = self._repo.odb.stream(bytes.fromhex(entry.blob)).read()
        except (git.GitError, ValueError) as exc:
            raise GitError(
                f"{redact(self.url)}: cannot read {entry.path}: {redact(str(exc))}"
            ) from None
        return data

    def commit(
        self,
        changes: Mapping[str, bytes],
        *,
        message: str,
        author_name: str,
        author_email: str,
        when: datetime,
        parent_sha: str | None = None,
        signing: Signing | None = None,
    ) -> str:
        """Commit ``changes`` (path → new content) on top of the fetched head (or
        ``parent_sha``); return the sha. With ``signing``, the commit is signed.

        The new commit is not on any branch until a push (:mod:`imagebot.git.push`)
        succeeds, so a failed push leaves nothing behind.
        """
        parent = self._repo.commit(parent_sha or self.fetched or self._remote_ref)
        # GitPython builds the tree through a temporary index that it swaps in for the
        # clone's own: processes sharing the clone take turns (see locked).
        with self.locked():
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
        if signing is not None:
            env = {
                "GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email,
                "GIT_COMMITTER_NAME": author_name, "GIT_COMMITTER_EMAIL": author_email,
                "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
            }  # fmt: skip
            return signed_commit(
                self.path, tree.hexsha, parent.hexsha, message, env=env, signing=signing,
                timeout=self.timeout, where=redact(self.url),
            )  # fmt: skip
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

    def is_ancestor(self, old: str, new: str) -> bool:
        """Whether commit ``old`` is ``new`` or one of its ancestors."""
        try:
            self._repo.git.merge_base("--is-ancestor", old, new)
        except git.GitCommandError:
            return False
        return True

    # -- imagebot's own branch (pull-request mode) -------------------------------------------

    def commits_between(self, base: str, head: str) -> list[CommitInfo]:
        """Commits reachable from ``head`` but not from ``base``, newest first."""
        out = self.run_git(
            "log", "--format=%H%x1f%ce%x1f%T%x1f%P%x1f%B%x1f%an <%ae>%x1e", f"{base}..{head}",
            what=f"list commits {base[:12]}..{head[:12]}",
        )  # fmt: skip
        infos = []
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) == 6:
                sha, email, tree, parents, message, author = fields
                infos.append(CommitInfo(sha, email, tree, tuple(parents.split()), message, author))
        return infos

    def describe(self, sha: str) -> CommitInfo:
        try:
            c = self._repo.commit(sha)
        except (git.GitError, ValueError) as exc:
            raise GitError(f"{redact(self.url)}: cannot read commit {sha}: {exc}") from None
        message = c.message if isinstance(c.message, str) else c.message.decode("utf-8", "replace")
        return CommitInfo(
            c.hexsha, c.committer.email or "", c.tree.hexsha,
            tuple(p.hexsha for p in c.parents), message,
        )  # fmt: skip

    def remote_branches(self) -> dict[str, str]:
        """Every branch of the remote and the sha it points at (one ``ls-remote``)."""
        out = self.run_git("ls-remote", "--heads", "origin", what="list branches")
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def has_commit(self, sha: str) -> bool:
        try:
            self._repo.odb.info(bytes.fromhex(sha))
        except (ValueError, git.GitError, OSError):
            return False
        return True

    def fetch_ref(self, branch: str) -> None:
        with self.locked():
            self.run_git(
                "fetch", "--quiet", "--no-tags", "origin",
                f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                what=f"fetch branch {branch!r}",
            )  # fmt: skip

    def try_git(self, *args: str) -> tuple[int, str, str]:
        """``git *args`` in the clone, whatever it answers: (exit code, stdout, stderr)."""
        code, out, err = self._repo.git.execute(
            ["git", *args],
            kill_after_timeout=self.timeout,
            with_extended_output=True,
            with_exceptions=False,
        )
        return int(code), str(out), str(err)

    def run_git(self, *args: str, what: str) -> str:
        """Git's output for ``git *args`` in the clone; GitError saying it cannot ``what``
        (within ``timeout``) otherwise."""
        try:
            out: str = self._repo.git.execute(
                ["git", *args], strip_newline_in_stdout=False, kill_after_timeout=self.timeout
            )
        except git.GitCommandError as exc:
            if timed_out(str(exc.stderr or "")):
                raise GitError(
                    f"{redact(self.url)}: cannot {what}: no answer within {self.timeout:g}s"
                    " (git_timeout)"
                ) from None
            raise GitError(f"{redact(self.url)}: cannot {what}: {_stderr(exc)}") from None
        return out


def timed_out(stderr: str) -> bool:
    # GitPython replaces stderr with this text when kill_after_timeout fired.
    return "Timeout: the command" in stderr and "did not complete in" in stderr


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
