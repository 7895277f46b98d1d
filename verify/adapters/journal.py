"""The local journal of recent online answers, so a patient verified online this morning is
recognised this afternoon when the network is down.

SQLite file in the data folder. Each row is found by a keyed hash of an identifier, encrypted
under a key derived from that identifier, and MACed with the terminal's own key (never in the
config or the logs; systemd credentials in production): a row edited offline fails its MAC
and is ignored, and a copied file gives away nothing without the key. Rows older than the
retention are purged.

A row *deleted* offline leaves no row to fail: the journal also keeps a MACed seal — the row
count and the XOR of every row's keyed tag — updated with each write and purge, and
:meth:`Journal.intact` compares it with the rows there. A journal that is not intact must not
let an older snapshot speak for someone it may have answered "expired" this morning.
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
CLOCK_SKEW = timedelta(minutes=5)  # a row may seem written this far ahead (clock drift)


def _sub(key: bytes, label: bytes, data: bytes = b"") -> bytes:
    return hmac.new(key, label + b"\x00" + data, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    answer: dict[str, Any]
    at: datetime


class Journal:
    def __init__(self, folder: Path, terminal_key: bytes, *, retention: timedelta,
                 now: datetime | None = None, readonly: bool = False) -> None:
        """``readonly``: a one-shot command reading the daemon's journal (the same answers
        offline as the daemon gives), never writing, creating or setting it aside; raises
        sqlite3.Error when it is missing or unreadable."""
        self._key = terminal_key
        self._mac_key = _sub(terminal_key, b"journal-mac")
        self.retention = retention
        self.readonly = readonly
        if readonly:
            self._open_readonly(folder / FILE)
            return
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._open(folder / FILE)
        except sqlite3.DatabaseError:
            # Truncated or corrupted (a power cut, a disk error, a hand): kept aside for
            # inspection, and a new journal begins — marked as having lost rows, so for one
            # retention period no older snapshot answers for anyone as if nothing was lost.
            log.error("journal unreadable; set aside, a new one begins")
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                broken = folder / (FILE + suffix)
                if broken.exists():
                    broken.rename(folder / f"{FILE}{suffix}.broken-{stamp}")
            self._open(folder / FILE)
            self._conn.execute("INSERT OR REPLACE INTO lost VALUES (1, ?, ?)",
                               (stamp, self._lost_mac(stamp)))

    def _lost_mac(self, stamp: str) -> bytes:
        return hmac.new(self._mac_key, b"lost" + stamp.encode(), hashlib.sha256).digest()

    def _open(self, path: Path) -> None:
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
        self._conn.execute("CREATE TABLE IF NOT EXISTS seal (id INTEGER PRIMARY KEY CHECK "
                           "(id = 1), count INTEGER NOT NULL, digest BLOB NOT NULL, "
                           "mac BLOB NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS lost (id INTEGER PRIMARY KEY CHECK "
                           "(id = 1), at TEXT NOT NULL, mac BLOB NOT NULL)")
        self._conn.execute("SELECT count(*) FROM entry").fetchone()  # reads the whole header
        self.tampered = 0
        self._lock = threading.Lock()
        self._checked: tuple[tuple[int, int], bool] | None = None
        if self._conn.execute("SELECT 1 FROM seal").fetchone() is None:
            # A new journal, or one from before the seal: sealed as it stands.
            count, digest = self._aggregate()
            self._write_seal(count, digest)

    @classmethod
    def reader(cls, folder: Path, terminal_key: bytes, *, retention: timedelta
               ) -> Journal | None:
        """The daemon's journal opened read-only; None when there is none yet or it cannot
        be read here (the snapshot alone answers then)."""
        try:
            return cls(folder, terminal_key, retention=retention, readonly=True)
        except sqlite3.Error:
            return None

    def _open_readonly(self, path: Path) -> None:
        if not path.is_file():
            raise sqlite3.OperationalError("no journal")
        self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                     check_same_thread=False, isolation_level=None)
        self._conn.execute("SELECT count(*) FROM entry").fetchone()
        self.tampered = 0
        self._lock = threading.Lock()
        self._checked = None

    def _tag(self, h: bytes, at: str) -> bytes:
        return hmac.new(self._mac_key, b"row" + h + at.encode(), hashlib.sha256).digest()

    def _aggregate(self) -> tuple[int, bytes]:
        count, acc = 0, 0
        for h, at in self._conn.execute("SELECT h, at FROM entry"):
            count += 1
            acc ^= int.from_bytes(self._tag(bytes(h), str(at)), "big")
        return count, acc.to_bytes(32, "big")

    def _seal_mac(self, count: int, digest: bytes) -> bytes:
        return hmac.new(self._mac_key, b"seal" + count.to_bytes(8, "big") + digest,
                        hashlib.sha256).digest()

    def _write_seal(self, count: int, digest: bytes) -> None:
        self._conn.execute("INSERT OR REPLACE INTO seal VALUES (1, ?, ?, ?)",
                           (count, digest, self._seal_mac(count, digest)))

    def _seal(self) -> tuple[int, int] | None:
        row = self._conn.execute("SELECT count, digest, mac FROM seal WHERE id = 1").fetchone()
        if row is None or not hmac.compare_digest(self._seal_mac(int(row[0]), bytes(row[1])),
                                                  bytes(row[2])):
            return None
        return int(row[0]), int.from_bytes(bytes(row[1]), "big")

    def intact(self, now: datetime | None = None) -> bool:
        """No row added, removed or re-dated behind the journal's back, and no journal lost
        (set aside as unreadable) within the retention period."""
        try:
            with self._lock:
                # The full check reads every row: done again only when the file changed, by
                # us (total_changes) or by anyone else (data_version) — not on every health
                # poll or offline lookup.
                version = (self._conn.total_changes,
                           self._conn.execute("PRAGMA data_version").fetchone()[0])
                if self._checked is not None and self._checked[0] == version:
                    sealed_ok = self._checked[1]
                else:
                    count, digest = self._aggregate()
                    sealed = self._seal()
                    sealed_ok = sealed is not None and sealed == (
                        count, int.from_bytes(digest, "big"))
                    self._checked = (version, sealed_ok)
                lost = self._conn.execute("SELECT at, mac FROM lost WHERE id = 1").fetchone()
        except sqlite3.DatabaseError:
            return False
        if lost is not None:
            stamp = str(lost[0])
            if not hmac.compare_digest(self._lost_mac(stamp), bytes(lost[1])):
                return False
            at = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            if (now or datetime.now(UTC)) - at < self.retention:
                return False
        return sealed_ok

    def _index(self, identifier: str) -> bytes:
        return _sub(self._key, b"journal-index", identifier.encode())[:16]

    def _mac(self, h: bytes, at: str, sealed: bytes) -> bytes:
        return hmac.new(self._mac_key, h + at.encode() + sealed, hashlib.sha256).digest()

    def put(self, identifiers: list[str], answer: dict[str, Any], at: datetime) -> None:
        if self.readonly:
            return
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
            seal = self._seal()
            count, acc = seal if seal is not None else (0, 0)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for h, stamp_, _, _ in rows:
                    old = self._conn.execute("SELECT at FROM entry WHERE h = ?",
                                             (h,)).fetchone()
                    if old is not None:
                        acc ^= int.from_bytes(self._tag(h, str(old[0])), "big")
                        count -= 1
                    acc ^= int.from_bytes(self._tag(h, stamp_), "big")
                    count += 1
                self._conn.executemany("INSERT OR REPLACE INTO entry VALUES (?, ?, ?, ?)",
                                       rows)
                if seal is not None:  # a broken seal stays broken: intact() tells
                    self._write_seal(count, acc.to_bytes(32, "big"))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def get(self, identifier: str, now: datetime) -> Entry | None:
        h = self._index(identifier)
        try:
            with self._lock:
                row = self._conn.execute("SELECT at, sealed, mac FROM entry WHERE h = ?",
                                         (h,)).fetchone()
        except sqlite3.DatabaseError:
            self.tampered += 1
            log.warning("journal unreadable at lookup; treated as no entry")
            return None
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
        if now - at > self.retention or at - now > CLOCK_SKEW:
            return None  # too old, or written while the clock ran ahead: not an answer of now
        return Entry(answer, at)

    def purge(self, now: datetime) -> int:
        if self.readonly:
            return 0
        cutoff = (now - self.retention).astimezone(UTC).isoformat()
        # rows dated ahead of now (written while the desk's clock ran fast) would otherwise
        # outlive the retention by as much as the clock was wrong
        ahead = (now + CLOCK_SKEW).astimezone(UTC).isoformat()
        with self._lock:
            sealed = self._seal()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                old = self._conn.execute("SELECT h, at FROM entry WHERE at < ? OR at > ?",
                                         (cutoff, ahead)).fetchall()
                self._conn.execute("DELETE FROM entry WHERE at < ? OR at > ?", (cutoff, ahead))
                if sealed is not None:
                    count, acc = sealed
                    for h, at in old:
                        acc ^= int.from_bytes(self._tag(bytes(h), str(at)), "big")
                    self._write_seal(count - len(old), acc.to_bytes(32, "big"))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(old)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
