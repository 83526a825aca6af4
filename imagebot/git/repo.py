"""The environment repo, through GitPython, without a work tree.

imagebot keeps a bare clone per environment repo and reads and writes *blobs*: files are
read with ``cat-file`` and committed by building a tree from the fetched branch plus the
edited blobs. No checkout means no ``core.autocrlf``/``.gitattributes`` conversion can
touch a byte (the byte-exact promise holds for what is in git, not for a work tree), no
stale files, and a monorepo costs only the blobs imagebot actually reads.

A push that loses a race (the branch moved since our fetch) raises :class:`PushRejected`;
the engine re-fetches, re-plans on the new head and tries again. Whether it was a race is
read from ``git push --porcelain``'s status line, never from the remote's free text (a
hook may say anything). Every git command has a timeout, and the clone is locked (a file
lock beside it) while it is created, fetched into or pushed from, so imagebot processes
sharing a cache directory take turns instead of breaking each other's refs.

The history of an environment's path (commits, trailers, references) is read through an
EnvRepo by :mod:`imagebot.git.history`.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
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

from imagebot import logs
from imagebot.errors import GitError

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


class PushRejected(GitError):
    """The remote branch moved since our fetch (non-fast-forward), or another push was
    updating it at the same moment (the remote could not lock the ref)."""


@dataclass(frozen=True)
class Signing:
    """Sign commits with git's own signing: ``gpg.format`` ssh or openpgp."""

    format: str  # "ssh" | "openpgp"
    key_file: Path


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    committer_email: str
    tree: str
    parents: tuple[str, ...]
    message: str


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
            with self._locked():
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
    def _locked(self) -> Iterator[None]:
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
        """Fetch the branch; return the sha it points at."""
        with self._locked():
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

        The new commit is not on any branch until :meth:`push` succeeds, so a failed push
        leaves nothing behind.
        """
        parent = self._repo.commit(parent_sha or self.fetched or self._remote_ref)
        # GitPython builds the tree through a temporary index that it swaps in for the
        # clone's own: processes sharing the clone take turns (see _locked).
        with self._locked():
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
            return self._signed_commit(
                tree.hexsha, parent.hexsha, message, actor=actor, stamp=stamp, signing=signing
            )
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
        where = f"{redact(self.url)}: push to {self.branch!r}"
        with self._locked():
            code, out, err = self._repo.git.execute(
                ["git", "push", "--porcelain", "origin", f"{sha}:refs/heads/{self.branch}"],
                kill_after_timeout=self.timeout,
                with_extended_output=True,
                with_exceptions=False,
            )
            if code != 0:
                status = push_status(out)
                if status is not None and is_race(status):
                    raise PushRejected(f"{where} rejected: the branch moved ({status})")
                if _timed_out(err):
                    raise GitError(f"{where}: no answer within {self.timeout:g}s (git_timeout)")
                said = remote_text(err)
                if status is not None:
                    raise GitError(f"{where} rejected: {status}" + (f": {said}" if said else ""))
                raise GitError(f"{where} failed: {redact(' '.join(err.split()))}")
            self.run_git("update-ref", self._remote_ref, sha, what="record pushed head")

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
            "log", "--format=%H%x1f%ce%x1f%T%x1f%P%x1f%B%x1e", f"{base}..{head}",
            what=f"list commits {base[:12]}..{head[:12]}",
        )  # fmt: skip
        infos = []
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) == 5:
                sha, email, tree, parents, message = fields
                infos.append(CommitInfo(sha, email, tree, tuple(parents.split()), message))
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
        with self._locked():
            self.run_git(
                "fetch", "--quiet", "--no-tags", "origin",
                f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                what=f"fetch branch {branch!r}",
            )  # fmt: skip

    def push_branches(self, updates: list[tuple[str, str, str | None]]) -> dict[str, GitError]:
        """Point each remote ``branch`` at ``sha`` in one ``git push`` — forced, but only
        while it still is at ``expect`` (None: only if it does not exist). The branches that
        were not updated, with why (PushRejected when someone else moved one)."""
        if not updates:
            return {}
        leases = [f"--force-with-lease=refs/heads/{b}:{e or ''}" for _, b, e in updates]
        refspecs = [f"{sha}:refs/heads/{b}" for sha, b, _ in updates]
        code, out, err = self._push(*leases, "origin", *refspecs)
        if code == 0:
            return {}
        failed: dict[str, GitError] = {}
        for line in out.splitlines():
            flag, _, rest = line.partition("\t")
            if flag != "!":
                continue
            ref = rest.partition("\t")[0]
            branch = ref.partition(":")[2].removeprefix("refs/heads/")
            failed[branch] = self._push_error(f"push of {branch!r}", line, err)
        if not failed:  # no per-ref report: the push as a whole failed
            error = self._push_error("push", out, err)
            return {b: error for _, b, _ in updates}
        return failed

    def delete_branch(self, branch: str, *, expect: str) -> None:
        """Delete remote ``branch`` if it still points at ``expect``."""
        self._leased_push(f":refs/heads/{branch}", branch, expect, what="delete")

    def _leased_push(self, refspec: str, branch: str, expect: str | None, *, what: str) -> None:
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        code, out, err = self._push(lease, "origin", refspec)
        if code != 0:
            raise self._push_error(f"{what} of {branch!r}", out, err)

    def _push(self, *args: str) -> tuple[int, str, str]:
        with self._locked():
            code, out, err = self._repo.git.execute(
                ["git", "push", "--porcelain", *args],
                kill_after_timeout=self.timeout,
                with_extended_output=True,
                with_exceptions=False,
            )
        return int(code), str(out), str(err)

    def _push_error(self, what: str, out: str, err: str) -> GitError:
        """PushRejected when the porcelain status says someone else moved the ref (a lease
        that went stale is one), else GitError with what git or the remote said."""
        where = f"{redact(self.url)}: {what}"
        status = push_status(out)
        if status is not None and is_race(status):
            return PushRejected(f"{where} rejected: the branch moved ({status})")
        if _timed_out(err):
            return GitError(f"{where}: no answer within {self.timeout:g}s (git_timeout)")
        said = remote_text(err)
        if status is not None:
            return GitError(f"{where} rejected: {status}" + (f": {said}" if said else ""))
        return GitError(f"{where} failed: {redact(' '.join(err.split()))}")

    def _signed_commit(
        self, tree: str, parent: str, message: str, *, actor: git.Actor, stamp: str,
        signing: Signing,
    ) -> str:  # fmt: skip
        """``git commit-tree -S``: git signs through its own ``gpg.format`` machinery.

        The key is used from a private temporary directory: ssh-keygen refuses a key file
        others can read (a mounted secret often is), and an OpenPGP key is imported into a
        throw-away keyring so the user's own keyring and agent are never touched.
        """
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": actor.name or "", "GIT_AUTHOR_EMAIL": actor.email or "",
            "GIT_COMMITTER_NAME": actor.name or "", "GIT_COMMITTER_EMAIL": actor.email or "",
            "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
        }  # fmt: skip
        scratch = tempfile.mkdtemp(prefix="ib-sign-")  # short: gpg-agent's socket lives here
        try:
            os.chmod(scratch, 0o700)
            if signing.format == "ssh":
                key = Path(scratch) / "key"
                key.write_bytes(_read_key(signing.key_file))
                key.chmod(0o600)
                config = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={key}"]
                flag = "-S"
            else:
                env["GNUPGHOME"] = scratch
                fingerprint = _import_openpgp_key(signing.key_file, env)
                config = ["-c", "gpg.format=openpgp"]
                flag = f"-S{fingerprint}"
            result = subprocess.run(
                ["git", *config, "commit-tree", tree, "-p", parent, flag, "-F", "-"],
                cwd=self.path, input=message.encode("utf-8"), env=env, capture_output=True,
                check=False, timeout=self.timeout,
            )  # fmt: skip
            if signing.format == "openpgp":
                subprocess.run(
                    ["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if result.returncode != 0:
            err = " ".join(result.stderr.decode("utf-8", "replace").split())
            raise GitError(
                f"{redact(self.url)}: cannot sign commit with {signing.format} key"
                f" {signing.key_file}: {err}"
            )
        return result.stdout.decode().strip()

    def run_git(self, *args: str, what: str) -> str:
        """Git's output for ``git *args`` in the clone; GitError saying it cannot ``what``
        (within ``timeout``) otherwise."""
        try:
            out: str = self._repo.git.execute(
                ["git", *args], strip_newline_in_stdout=False, kill_after_timeout=self.timeout
            )
        except git.GitCommandError as exc:
            if _timed_out(str(exc.stderr or "")):
                raise GitError(
                    f"{redact(self.url)}: cannot {what}: no answer within {self.timeout:g}s"
                    " (git_timeout)"
                ) from None
            raise GitError(f"{redact(self.url)}: cannot {what}: {_stderr(exc)}") from None
        return out


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GitError(f"signing key {path}: cannot read: {exc.strerror or exc}") from None


def _import_openpgp_key(path: Path, env: Mapping[str, str]) -> str:
    """Import an armoured secret key into ``env``'s GNUPGHOME; return its fingerprint."""
    data = _read_key(path)
    result = subprocess.run(
        ["gpg", "--batch", "--import", "--import-options", "import-show", "--with-colons"],
        input=data, env=dict(env), capture_output=True, check=False,
    )  # fmt: skip
    fingerprints = [
        line.split(":")[9]
        for line in result.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("fpr:")
    ]
    if result.returncode != 0 or not fingerprints:
        err = " ".join(result.stderr.decode("utf-8", "replace").split())
        raise GitError(f"signing key {path}: not an OpenPGP secret key: {err}")
    return fingerprints[0]


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


def _timed_out(stderr: str) -> bool:
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
