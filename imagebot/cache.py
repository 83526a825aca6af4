"""The one cache: a SQLite file of tag listings, tag-list pages with their ETags, first-seen
times, selection decisions and what was read of each environment's history.

Everything here can be rebuilt from the registries except first-seen times: deleting the
file costs registry calls, selection time and restarts every minimum-age clock, nothing
else. A file SQLite cannot read is moved aside (``NAME.unreadable``) with a warning and
started again, so a broken cache never stops imagebot from starting.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagebot import __version__, logs

log = logs.get_logger("imagebot.cache")

#: The file's name in the cache directory.
FILE_NAME = "registry.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tag_pages (
    repository TEXT NOT NULL,
    url        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    tags       TEXT NOT NULL,
    next       TEXT,
    PRIMARY KEY (repository, url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repositories (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    tags       TEXT NOT NULL,
    tags_hash  BLOB NOT NULL,
    fetched_at REAL NOT NULL,
    first_seen TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS decisions (
    repository  TEXT NOT NULL,
    rule        TEXT NOT NULL,
    current     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    tag         TEXT,
    reason      TEXT NOT NULL,
    digest      TEXT,
    PRIMARY KEY (repository, rule, current)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    key TEXT PRIMARY KEY,
    doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verifications (
    digest TEXT NOT NULL,
    policy TEXT NOT NULL,
    how    TEXT NOT NULL,
    PRIMARY KEY (digest, policy)
) WITHOUT ROWID
"""
#: ``repositories.first_seen`` holds first-seen times as JSON groups ``[[stamp, [tag, ...]],
#: ...]``, one group per listing that brought new tags (the first listing brings them all):
#: a row per tag made the first scan of 2,000 repositories x 200 tags write 400,000 rows.
#: ``decisions`` holds one selection decision per (repository, rule, running tag) with the
#: fingerprint of the tag list it was made from; a changed tag list overwrites it.
#: ``history`` holds the commits read of one environment's path (``imagebot.git.history``).
#: ``verifications`` holds what verified a digest under a ``verify`` policy (its hash): a
#: digest never changes, so a pass is never checked again (``imagebot.registry.trust``).

#: The schema's version (``PRAGMA user_version``); 4 lacked ``verifications``, 2 lacked
#: ``decisions`` and ``history``, 1 kept a row per first sighting (a ``first_seen`` table)
#: and is started afresh like an unreadable file.
_VERSION = 5

#: Seconds to wait for another process's write to the cache file to finish.
LOCK_TIMEOUT = 30.0

#: What a stored decision holds: the chosen tag, the reason, the chosen tag's digest.
Stored = tuple[str | None, str, str | None]


@dataclass(frozen=True, slots=True)
class CachedPage:
    """One tags/list page as last served, to be reused when the registry answers 304."""

    etag: str
    tags: list[str]
    next: str | None


def _connect(path: str) -> sqlite3.Connection:
    # timeout: how long to wait for another process (imagebot runs sharing the cache).
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=LOCK_TIMEOUT)
    # A crash may lose the last transactions; a cache can afford it, fsyncs it cannot.
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL once. Changing the journal mode takes an exclusive lock that
    SQLite's busy timeout does not wait for, so two processes opening a new cache at once
    could fail with "database is locked" (seen in the two-process apply test): the mode is
    persistent, so read it first, and retry the switch a bounded number of times."""
    for attempt in range(50):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)  # another process holds the lock for a moment; real time here


class Cache:
    """The cache file (or ``":memory:"``) of one process; safe to use from worker threads."""

    FLUSH_ROWS = 50_000

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, no access: not corrupt
                raise
            self._db = self._open_afresh(exc)
        self._lock = threading.Lock()  # plans read decisions from worker threads
        self._pending: list[tuple[str, list[str], float]] = []
        self._pending_rows = 0
        self._decisions: list[tuple[str, str, str, str, str | None, str, str | None]] = []
        self._histories: dict[str, str] = {}
        self._verifications: dict[tuple[str, str], str] = {}
        self._flush_lock = threading.Lock()
        # Batches are written on a second connection so a worker thread can commit them
        # while the event loop keeps reading (WAL lets readers and a writer overlap).
        # An in-memory database exists per connection, so it has only the one.
        self._writer = self._db if self.path == ":memory:" else _connect(self.path)

    def _open(self) -> sqlite3.Connection:
        db = _connect(self.path)
        try:
            _use_wal(db)
            if db.execute("PRAGMA user_version").fetchone()[0] < _VERSION:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'first_seen'").fetchone():
                    raise sqlite3.DatabaseError("written by an earlier imagebot (format 1)")
                for statement in _SCHEMA.split(";"):  # executescript would commit first
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {_VERSION}")
                db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    def _open_afresh(self, error: sqlite3.DatabaseError) -> sqlite3.Connection:
        aside = f"{self.path}.unreadable"
        log.warning("cache_unreadable", path=self.path, moved_to=aside, error=str(error))
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):  # the old file's journal must not meet the new one
            Path(self.path + suffix).unlink(missing_ok=True)
        return self._open()

    def close(self) -> None:
        self.flush()
        if self._writer is not self._db:
            self._writer.close()
        self._db.close()

    def _one(self, sql: str, *args: object) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    # ------------------------------------------------------------------ tag listings

    def page(self, repository: str, url: str) -> CachedPage | None:
        row = self._one(
            "SELECT etag, tags, next FROM tag_pages WHERE repository = ? AND url = ?",
            repository,
            url,
        )
        if row is None:
            return None
        return CachedPage(etag=row[0], tags=json.loads(row[1]), next=row[2])

    def store_page(self, repository: str, url: str, page: CachedPage) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tag_pages VALUES (?, ?, ?, ?, ?)",
                (repository, url, page.etag, json.dumps(page.tags), page.next),
            )

    def record_tags(self, repository: str, tags: list[str], now: datetime) -> None:
        """Store the repository's current tag list; stamp tags never seen before with ``now``.

        Writes are batched (one transaction per ``FLUSH_ROWS`` tags, and on every read and
        on close): a commit per repository cost more than the registry calls of a scan.
        """
        self._pending.append((repository, tags, now.timestamp()))
        self._pending_rows += len(tags) + 1
        if self._pending_rows >= self.FLUSH_ROWS * 4:
            self.flush()  # a caller that never flushes in a thread still stays bounded

    def listing(self, repository: str) -> tuple[list[str], float] | None:
        """The repository's last recorded tag list and when it was listed (a POSIX time),
        or None if it never was."""
        for name, tags, stamp in reversed(self._pending):
            if name == repository:
                return tags, stamp
        row = self._one("SELECT tags, fetched_at FROM repositories WHERE name = ?", repository)
        return (json.loads(row[0]), row[1]) if row is not None else None

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def tags(self, repository: str) -> list[str] | None:
        """The tag list stored by the last successful listing, if any."""
        self.flush()
        row = self._one("SELECT tags FROM repositories WHERE name = ?", repository)
        return None if row is None else list(json.loads(row[0]))

    def first_seen(self, repository: str) -> dict[str, datetime]:
        self.flush()
        row = self._one("SELECT first_seen FROM repositories WHERE name = ?", repository)
        seen: dict[str, datetime] = {}
        for stamp, tags in json.loads(row[0]) if row is not None else ():
            when = datetime.fromtimestamp(stamp, UTC)
            for tag in tags:
                seen.setdefault(tag, when)
        return seen

    # ------------------------------------------------------------- selection decisions

    @staticmethod
    def rule_key(rule: object) -> str:
        """The text a rule is stored under: its full field values and imagebot's version
        (a new release selects afresh)."""
        return f"{__version__} {rule!r}"

    def decision(
        self, repository: str, rule: str, current: str | None, fingerprint: str
    ) -> Stored | None:
        """The decision stored for this tag list (by ``fingerprint``), rule and running tag."""
        row = self._one(
            "SELECT fingerprint, tag, reason, digest FROM decisions"
            " WHERE repository = ? AND rule = ? AND current = ?",
            repository,
            rule,
            current or "",
        )
        if row is None or row[0] != fingerprint:
            return None
        return row[1], row[2], row[3]

    def store_decision(
        self, repository: str, rule: str, current: str | None, fingerprint: str, value: Stored
    ) -> None:
        """Keep a decision; written with the next flush."""
        with self._lock:
            self._decisions.append((repository, rule, current or "", fingerprint, *value))

    # ---------------------------------------------------------------------- histories

    def history(self, key: str) -> str | None:
        """The history document stored under ``key``, if any."""
        with self._lock:
            pending = self._histories.get(key)
        if pending is not None:
            return pending
        row = self._one("SELECT doc FROM history WHERE key = ?", key)
        return None if row is None else str(row[0])

    def store_history(self, key: str, doc: str) -> None:
        """Keep a history document; written with the next flush."""
        with self._lock:
            self._histories[key] = doc

    # ------------------------------------------------------------------- verifications

    def verification(self, digest: str, policy: str) -> str | None:
        """What verified ``digest`` under the policy hashed as ``policy``, if it passed."""
        with self._lock:
            pending = self._verifications.get((digest, policy))
        if pending is not None:
            return pending
        row = self._one("SELECT how FROM verifications WHERE digest = ? AND policy = ?",
                        digest, policy)  # fmt: skip
        return None if row is None else str(row[0])

    def store_verification(self, digest: str, policy: str, how: str) -> None:
        """Keep a pass of the verify gate; written with the next flush."""
        with self._lock:
            self._verifications[(digest, policy)] = how

    # ------------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write what was batched; safe to run in a worker thread (own connection)."""
        with self._flush_lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
            with self._lock:
                decisions, self._decisions = self._decisions, []
                histories, self._histories = self._histories, {}
                verified, self._verifications = self._verifications, {}
            if not pending and not decisions and not histories and not verified:
                return
            db = self._writer
            # IMMEDIATE: take the write lock before reading. A deferred transaction that
            # reads, then writes after another process committed fails at once with
            # "database is locked" (its snapshot is stale) instead of waiting its turn.
            db.execute("BEGIN IMMEDIATE")
            try:
                for repository, tags, stamp in pending:
                    _write_tags(db, repository, tags, stamp)
                db.executemany(
                    "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)", decisions
                )
                db.executemany("INSERT OR REPLACE INTO history VALUES (?, ?)", histories.items())
                db.executemany(
                    "INSERT OR REPLACE INTO verifications VALUES (?, ?, ?)",
                    [(d, p, how) for (d, p), how in verified.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise


def _write_tags(db: sqlite3.Connection, repository: str, tags: list[str], stamp: float) -> None:
    # Of the set of tags: a registry may list them in a different order each time.
    digest = hashlib.blake2b("\n".join(sorted(tags)).encode(), digest_size=16).digest()
    row = db.execute(
        "SELECT id, tags_hash, first_seen FROM repositories WHERE name = ?", (repository,)
    ).fetchone()
    if row is not None and row[1] == digest:  # unchanged: nothing new to stamp
        db.execute("UPDATE repositories SET fetched_at = ? WHERE id = ?", (stamp, row[0]))
        return
    encoded = json.dumps(tags)
    if row is None:  # every tag is new: one group, the list just encoded
        db.execute(
            "INSERT INTO repositories (name, tags, tags_hash, fetched_at, first_seen)"
            " VALUES (?, ?, ?, ?, ?)",
            (repository, encoded, digest, stamp, f"[[{json.dumps(stamp)}, {encoded}]]"),
        )
        return
    groups: list[list[Any]] = json.loads(row[2])
    known: set[str] = set()
    for _stamp, seen in groups:
        known.update(seen)
    new = [tag for tag in dict.fromkeys(tags) if tag not in known]
    if new:
        groups.append([stamp, new])
    db.execute(
        "UPDATE repositories SET tags = ?, tags_hash = ?, fetched_at = ?, first_seen = ?"
        " WHERE id = ?",
        (encoded, digest, stamp, json.dumps(groups), row[0]),
    )
