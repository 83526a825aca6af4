"""The embedded SQLite cache: tag-list pages with their ETags, and when each tag was first seen.

Everything here can be rebuilt from the registries except first-seen times: deleting the
file costs registry calls and restarts every minimum-age clock, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
"""
#: ``first_seen`` holds a repository's first-seen times as JSON groups ``[[stamp, [tag,
#: ...]], ...]``, one group per listing that brought new tags (the first listing brings them
#: all): a row per tag made the first scan of 2,000 repositories x 200 tags write 400,000 rows,
#: about a second of CPU. Version 1 files (a ``first_seen`` table) are converted on open.
_VERSION = 2


@dataclass(frozen=True, slots=True)
class CachedPage:
    """One tags/list page as last served, to be reused when the registry answers 304."""

    etag: str
    tags: list[str]
    next: str | None


#: Seconds to wait for another process's write to the cache file to finish.
LOCK_TIMEOUT = 30.0


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


class TagCache:
    """A SQLite file (or ``":memory:"``) shared by one process's registry client."""

    FLUSH_ROWS = 50_000

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the event loop's thread only; statements are short.
        # timeout: how long to wait for another process (imagebot runs sharing the cache).
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=LOCK_TIMEOUT
        )
        _use_wal(self._db)
        # A crash may lose the last transactions; a cache can afford it, fsyncs it cannot.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._pending: list[tuple[str, list[str], float]] = []
        self._pending_rows = 0
        self._flush_lock = threading.Lock()
        # Batches are written on a second connection so a worker thread can commit them
        # while the event loop keeps reading (WAL lets readers and a writer overlap).
        # An in-memory database exists per connection, so it has only the one.
        self._writer = (
            self._db
            if self.path == ":memory:"
            else sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=LOCK_TIMEOUT
            )
        )
        self._writer.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self) -> None:
        db = self._db
        if db.execute("PRAGMA user_version").fetchone()[0] >= _VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            old = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            for statement in _SCHEMA.split(";"):  # executescript would commit first
                if statement.strip():
                    db.execute(statement)
            if "repositories" in old:
                columns = {row[1] for row in db.execute("PRAGMA table_info(repositories)")}
                if "first_seen" not in columns:
                    db.execute(
                        "ALTER TABLE repositories ADD COLUMN first_seen TEXT NOT NULL DEFAULT '[]'"
                    )
            if "first_seen" in old:
                groups: dict[int, dict[float, list[str]]] = {}
                for repo_id, tag, seen in db.execute(
                    "SELECT repository, tag, seen_at FROM first_seen ORDER BY seen_at, tag"
                ):
                    groups.setdefault(repo_id, {}).setdefault(seen, []).append(tag)
                db.executemany(
                    "UPDATE repositories SET first_seen = ? WHERE id = ?",
                    [
                        (json.dumps([[seen, tags] for seen, tags in by_stamp.items()]), repo_id)
                        for repo_id, by_stamp in groups.items()
                    ],
                )
                db.execute("DROP TABLE first_seen")
            db.execute(f"PRAGMA user_version = {_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.flush()
        if self._writer is not self._db:
            self._writer.close()
        self._db.close()

    def page(self, repository: str, url: str) -> CachedPage | None:
        row = self._db.execute(
            "SELECT etag, tags, next FROM tag_pages WHERE repository = ? AND url = ?",
            (repository, url),
        ).fetchone()
        if row is None:
            return None
        return CachedPage(etag=row[0], tags=json.loads(row[1]), next=row[2])

    def store_page(self, repository: str, url: str, page: CachedPage) -> None:
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
        row = self._db.execute(
            "SELECT tags, fetched_at FROM repositories WHERE name = ?", (repository,)
        ).fetchone()
        return (json.loads(row[0]), row[1]) if row is not None else None

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def flush(self) -> None:
        """Write the batched tag lists; safe to run in a worker thread (own connection)."""
        with self._flush_lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
            if not pending:
                return
            db = self._writer
            # IMMEDIATE: take the write lock before reading. A deferred transaction that
            # reads, then writes after another process committed fails at once with
            # "database is locked" (its snapshot is stale) instead of waiting its turn.
            db.execute("BEGIN IMMEDIATE")
            try:
                for repository, tags, stamp in pending:
                    self._write(db, repository, tags, stamp)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @staticmethod
    def _write(db: sqlite3.Connection, repository: str, tags: list[str], stamp: float) -> None:
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

    def tags(self, repository: str) -> list[str] | None:
        """The tag list stored by the last successful listing, if any."""
        self.flush()
        row = self._db.execute(
            "SELECT tags FROM repositories WHERE name = ?", (repository,)
        ).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def first_seen(self, repository: str) -> dict[str, datetime]:
        self.flush()
        row = self._db.execute(
            "SELECT first_seen FROM repositories WHERE name = ?", (repository,)
        ).fetchone()
        seen: dict[str, datetime] = {}
        for stamp, tags in json.loads(row[0]) if row is not None else ():
            when = datetime.fromtimestamp(stamp, UTC)
            for tag in tags:
                seen.setdefault(tag, when)
        return seen
