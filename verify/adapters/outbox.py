"""The webhook's durable outbox: SQLite in the data folder, each body encrypted (AES-256-GCM
under a key derived from the terminal key, the entry's id as associated data) so a copied file
gives nothing away, like the journal. An entry is written (and synced) before delivery is
tried, deleted once the HIS took it, and dropped after the privacy window if it never did;
deleted content is overwritten (``secure_delete``). The entry id is the idempotency key: a
crash between the HIS's answer and the delete re-sends the same id, never a new one.
"""

from __future__ import annotations

import contextlib
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
        self.max_entries = max_entries
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
        self._conn.execute("SELECT count(*) FROM outbox").fetchone()  # fails if corrupted

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

    def due(self, now: float, limit: int = 100) -> list[Entry]:
        """Entries whose time has come, oldest first; one that does not decrypt is dropped."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, created, attempts, nonce, body FROM outbox WHERE due <= ? "
                "ORDER BY created LIMIT ?", (now, limit)).fetchall()
        out = []
        for entry_id, created, attempts, nonce, sealed in rows:
            try:
                plain = self._aead.decrypt(nonce, sealed, entry_id.encode())
            except InvalidTag:
                log.error("outbox entry failed its tag; dropped")
                self.delete(entry_id)
                continue
            out.append(Entry(entry_id, plain, created, attempts))
        return out

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
