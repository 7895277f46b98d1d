"""The local journal of recent online answers, so a patient verified online this morning is
recognised this afternoon when the network is down.

SQLite file in the data folder. Each row is found by a keyed hash of an identifier, encrypted
under a key derived from that identifier, and MACed with the terminal's own key (never in the
config or the logs; systemd credentials in production): a row edited offline fails its MAC
and is ignored, and a copied file gives away nothing without the key. Rows older than the
retention are purged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
FILE = "journal.db"


def _sub(key: bytes, label: bytes, data: bytes = b"") -> bytes:
    return hmac.new(key, label + b"\x00" + data, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    answer: dict[str, Any]
    at: datetime


class Journal:
    def __init__(self, folder: Path, terminal_key: bytes, *, retention: timedelta) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / FILE
        new = not path.exists()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if new:
            path.chmod(0o600)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: no fsync per answer (a power cut may lose the last few recent answers,
        # never corrupt the file) — the desk must not wait on the disk.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS entry (h BLOB PRIMARY KEY, at TEXT NOT "
                           "NULL, sealed BLOB NOT NULL, mac BLOB NOT NULL) WITHOUT ROWID")
        self._key = terminal_key
        self._mac_key = _sub(terminal_key, b"journal-mac")
        self.retention = retention
        self.tampered = 0
        self._lock = threading.Lock()

    def _index(self, identifier: str) -> bytes:
        return _sub(self._key, b"journal-index", identifier.encode())[:16]

    def _mac(self, h: bytes, at: str, sealed: bytes) -> bytes:
        return hmac.new(self._mac_key, h + at.encode() + sealed, hashlib.sha256).digest()

    def put(self, identifiers: list[str], answer: dict[str, Any], at: datetime) -> None:
        plain = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
        stamp = at.astimezone(UTC).isoformat()  # one offset, so rows compare as text
        rows = []
        for ident in identifiers:
            h = self._index(ident)
            nonce = os.urandom(12)
            sealed = nonce + AESGCM(_sub(self._key, b"journal-enc", ident.encode())).encrypt(
                nonce, plain, h)
            rows.append((h, stamp, sealed, self._mac(h, stamp, sealed)))
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO entry VALUES (?, ?, ?, ?)", rows)

    def get(self, identifier: str, now: datetime) -> Entry | None:
        h = self._index(identifier)
        with self._lock:
            row = self._conn.execute("SELECT at, sealed, mac FROM entry WHERE h = ?",
                                     (h,)).fetchone()
        if row is None:
            return None
        stamp, sealed, mac = str(row[0]), bytes(row[1]), bytes(row[2])
        if not hmac.compare_digest(self._mac(h, stamp, sealed), mac):
            self.tampered += 1
            log.warning("journal row failed its MAC; ignored (edited offline?)")
            return None
        try:
            at = datetime.fromisoformat(stamp)
            plain = AESGCM(_sub(self._key, b"journal-enc", identifier.encode())).decrypt(
                sealed[:12], sealed[12:], h)
            answer = json.loads(plain)
        except (ValueError, InvalidTag):
            self.tampered += 1
            log.warning("journal row does not decrypt; ignored")
            return None
        if now - at > self.retention:
            return None
        return Entry(answer, at)

    def purge(self, now: datetime) -> int:
        cutoff = (now - self.retention).astimezone(UTC).isoformat()
        with self._lock:
            cur = self._conn.execute("DELETE FROM entry WHERE at < ?", (cutoff,))
        return cur.rowcount

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
