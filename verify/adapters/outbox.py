"""The webhook's durable outbox: SQLite in the data folder, each body encrypted (AES-256-GCM
under a key derived from the terminal key, the entry's id as associated data) so a copied file
gives nothing away, like the journal. An entry is written (and synced) before delivery is
tried, deleted once the HIS took it, and dropped after the privacy window if it never did;
deleted content is overwritten (``secure_delete``). The entry id is the idempotency key: a
crash between the HIS's answer and the delete re-sends the same id, never a new one.

The file remembers which key sealed it (a keyed check value, never the key): after the
terminal key changed, every entry left from the old one is unreadable, so they are deleted at
open, all at once, and their number is kept in :attr:`Outbox.key_changed` for the caller to
count and show.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
FILE = "outbox.db"
MAX_ENTRIES = 50_000  # about two weeks of a busy desk; beyond it new entries are refused
KEY_CHECK = b"tiepdon outbox key check v1"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    body: bytes
    created: float
    attempts: int


class Outbox:
    def __init__(self, folder: Path, key: bytes, *, max_entries: int = MAX_ENTRIES) -> None:
        """``key``: 32 bytes of the outbox's own, derived from the terminal key."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._aead = AESGCM(key)
        self._check = hmac.new(key, KEY_CHECK, hashlib.sha256).digest()
        self.max_entries = max_entries
        self.key_changed = 0  # entries sealed under an earlier key, deleted at open
        self._lock = threading.Lock()
        path = folder / FILE
        try:
            self._open(path)
        except sqlite3.DatabaseError:
            # Corrupted (a power cut, a disk error): set aside, a new outbox begins. What was
            # in it cannot be read anyway; the loss is logged and counted by the caller.
            log.error("outbox unreadable; set aside, a new one begins")
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            for suffix in ("", "-wal", "-shm"):
                broken = folder / (FILE + suffix)
                if broken.exists():
                    broken.rename(folder / f"{FILE}{suffix}.broken")
            self.lost = True
            self._open(path)
        else:
            self.lost = False
        self._check_key()

    def _open(self, path: Path) -> None:
        new = not path.exists()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if new:
            path.chmod(0o600)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # an entry written survives a power cut
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, created REAL NOT NULL, "
            "due REAL NOT NULL, attempts INTEGER NOT NULL, nonce BLOB NOT NULL, "
            "body BLOB NOT NULL)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due, created)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, "
                           "value BLOB NOT NULL)")
        self._conn.execute("SELECT count(*) FROM outbox").fetchone()  # fails if corrupted

    def _check_key(self) -> None:
        """Entries sealed under another key than this one are deleted, all at once, with one
        log line. A file from before the check value was kept has its oldest entry tried."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'key'").fetchone()
        if row is None:
            other = not self._oldest_opens()
        else:
            other = not hmac.compare_digest(bytes(row[0]), self._check)
        if other:
            with self._lock:
                self.key_changed = self._conn.execute("DELETE FROM outbox").rowcount
            if self.key_changed:
                log.error("outbox: %d entries sealed under an earlier terminal key were "
                          "deleted (the key changed)", self.key_changed)
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('key', ?)", (self._check,))

    def _oldest_opens(self) -> bool:
        row = self._conn.execute("SELECT id, nonce, body FROM outbox ORDER BY created "
                                 "LIMIT 1").fetchone()
        if row is None:
            return True
        try:
            self._aead.decrypt(row[1], row[2], row[0].encode())
        except InvalidTag:
            return False
        return True

    def put(self, entry_id: str, body: bytes, now: float) -> bool:
        """False when the outbox is full (the caller counts it)."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, body, entry_id.encode())
        with self._lock:
            if self._count() >= self.max_entries:
                return False
            self._conn.execute("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, 0, ?, ?)",
                               (entry_id, now, now, nonce, sealed))
        return True

    def due(self, now: float, limit: int = 100) -> tuple[list[Entry], int]:
        """Entries whose time has come, oldest first, and how many were dropped because they
        did not decrypt (an edited or damaged row: the key was checked at open)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, created, attempts, nonce, body FROM outbox WHERE due <= ? "
                "ORDER BY created LIMIT ?", (now, limit)).fetchall()
        out, dropped = [], 0
        for entry_id, created, attempts, nonce, sealed in rows:
            try:
                plain = self._aead.decrypt(nonce, sealed, entry_id.encode())
            except InvalidTag:
                dropped += 1
                self.delete(entry_id)
                continue
            out.append(Entry(entry_id, plain, created, attempts))
        if dropped:
            log.error("outbox: %d entries failed their tag; dropped", dropped)
        return out, dropped

    def delete(self, entry_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))

    def retry(self, entry_id: str, due: float) -> None:
        with self._lock:
            self._conn.execute("UPDATE outbox SET due = ?, attempts = attempts + 1 "
                               "WHERE id = ?", (due, entry_id))

    def next_due(self) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT min(due) FROM outbox").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def purge(self, older_than: float) -> int:
        with self._lock:
            cur = self._conn.execute("DELETE FROM outbox WHERE created < ?", (older_than,))
        return cur.rowcount

    def count(self) -> int:
        with self._lock:
            return self._count()

    def _count(self) -> int:
        row = self._conn.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0])

    def oldest(self) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT min(created) FROM outbox").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
