"""The embedded SQLite cache: tag-list pages with their ETags, and when each tag was first seen.

Everything here can be rebuilt from the registries except first-seen times: deleting the
file costs registry calls and restarts every minimum-age clock, nothing else.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tag_pages (
    repository TEXT NOT NULL,
    url        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    tags       TEXT NOT NULL,
    next       TEXT,
    PRIMARY KEY (repository, url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tag_lists (
    repository TEXT PRIMARY KEY,
    tags       TEXT NOT NULL,
    fetched_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS first_seen (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    seen_at    REAL NOT NULL,
    PRIMARY KEY (repository, tag)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class CachedPage:
    """One tags/list page as last served, to be reused when the registry answers 304."""

    etag: str
    tags: list[str]
    next: str | None


class TagCache:
    """A SQLite file (or ``":memory:"``) shared by one process's registry client."""

    FLUSH_ROWS = 50_000

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the event loop's thread only; statements are short.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A crash may lose the last transactions; a cache can afford it, fsyncs it cannot.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, list[str], float]] = []
        self._pending_rows = 0

    def close(self) -> None:
        self.flush()
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
        if self._pending_rows >= self.FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        db = self._db
        db.execute("BEGIN")
        try:
            for repository, tags, stamp in pending:
                db.executemany(
                    "INSERT OR IGNORE INTO first_seen VALUES (?, ?, ?)",
                    [(repository, tag, stamp) for tag in tags],
                )
                db.execute(
                    "INSERT OR REPLACE INTO tag_lists VALUES (?, ?, ?)",
                    (repository, json.dumps(tags), stamp),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def tags(self, repository: str) -> list[str] | None:
        """The tag list stored by the last successful listing, if any."""
        self.flush()
        row = self._db.execute(
            "SELECT tags FROM tag_lists WHERE repository = ?", (repository,)
        ).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def first_seen(self, repository: str) -> dict[str, datetime]:
        self.flush()
        return {
            tag: datetime.fromtimestamp(seen, UTC)
            for tag, seen in self._db.execute(
                "SELECT tag, seen_at FROM first_seen WHERE repository = ?", (repository,)
            )
        }
