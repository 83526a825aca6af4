"""Selection decisions kept on disk, so a new process skips selection for a repository whose
tag list and rule did not change (a cycle without ETags still lists every repository, but
need not select again).

A decision is stored under (repository, rule, running tag) with the fingerprint of the tag
list it was made from; a changed tag list overwrites it, so the file holds one decision per
image and rule. Deleting the file costs selection time, never a wrong answer. The imagebot
version is part of the rule text: a new release selects afresh.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from imagebot import __version__

_SCHEMA = """
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
"""

#: What a stored decision holds: the chosen tag, the reason, the chosen tag's digest.
Stored = tuple[str | None, str, str | None]


class DecisionStore:
    """A SQLite file of selection decisions; writes are kept until ``close``."""

    def __init__(self, path: Path | str) -> None:
        self._db = _open(path)
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            # An unreadable file is only lost time: start again with an empty one.
            self._db.close()
            Path(path).unlink(missing_ok=True)
            self._db = _open(path)
            self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()  # plans run in worker threads
        self._pending: list[tuple[str, str, str, str, str | None, str, str | None]] = []

    @staticmethod
    def rule_key(rule: object) -> str:
        """The text a rule is stored under: its full field values and imagebot's version."""
        return f"{__version__} {rule!r}"

    def get(
        self, repository: str, rule: str, current: str | None, fingerprint: str
    ) -> Stored | None:
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint, tag, reason, digest FROM decisions"
                " WHERE repository = ? AND rule = ? AND current = ?",
                (repository, rule, current or ""),
            ).fetchone()
        if row is None or row[0] != fingerprint:
            return None
        return row[1], row[2], row[3]

    def put(
        self, repository: str, rule: str, current: str | None, fingerprint: str, value: Stored
    ) -> None:
        with self._lock:
            self._pending.append((repository, rule, current or "", fingerprint, *value))

    def close(self) -> None:
        """Write the decisions made since opening (one transaction), then close the file."""
        try:
            if self._pending:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.executemany(
                        "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        self._pending,
                    )
                self._pending.clear()
        finally:
            self._db.close()


def _open(path: Path | str) -> sqlite3.Connection:
    return sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
