"""Offline snapshots on disk (SQLite): build, verify, install atomically, look up.

The only user of ``sqlite3`` for snapshots. Layout of an installed cache folder::

    cache/current -> v42-1a2b3c        (a symlink, swapped atomically)
    cache/v42-1a2b3c/records.db
    cache/v42-1a2b3c/manifest.json

Install copies into a staging folder, fsyncs, checks hash, signature and version, then
renames the symlink: a power cut at any point leaves the previous snapshot in use.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verify.snapshot import (
    FORMAT,
    CacheError,
    CacheIntegrityError,
    Manifest,
    check_hash,
    check_size,
    check_version,
    derive,
    identifiers,
    open_record,
    parse_manifest,
    seal_record,
    sign_manifest,
    wrap_key,
)

log = logging.getLogger(__name__)
RECORDS, MANIFEST, CURRENT = "records.db", "manifest.json", "current"
_SCHEMA = """
CREATE TABLE rec (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE idx (h BLOB NOT NULL, rec INTEGER NOT NULL, wrapped BLOB NOT NULL);
"""
# The index on the keyed hashes is built after the bulk load: inserting random keys into a
# B-tree row by row slows down as the file outgrows the cache; one sort at the end does not.
_INDEX = "CREATE INDEX idx_h ON idx (h)"
CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def build(records: Iterable[Mapping[str, Any]], out_dir: Path, *, signing_key: Ed25519PrivateKey,
          key_id: str, reading_key: bytes, version: int, created: datetime,
          expires: datetime, batch: int = 20000) -> Manifest:
    """Write ``records.db`` and a signed ``manifest.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RECORDS
    path.unlink(missing_ok=True)
    salt = secrets.token_bytes(16)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=4096;"
                       "PRAGMA cache_size=-262144; PRAGMA temp_store=FILE;" + _SCHEMA)
    count = 0
    rec_rows: list[tuple[int, bytes]] = []
    idx_rows: list[tuple[bytes, int, bytes]] = []
    conn.execute("BEGIN")
    for record in records:
        count += 1
        record_key = secrets.token_bytes(16)
        rec_rows.append((count, seal_record(record, record_key)))
        for ident in identifiers(record):
            keys = derive(reading_key, salt, ident)
            idx_rows.append((keys.index, count, wrap_key(keys, record_key)))
        if len(rec_rows) >= batch:
            conn.executemany("INSERT INTO rec VALUES (?, ?)", rec_rows)
            conn.executemany("INSERT INTO idx VALUES (?, ?, ?)", idx_rows)
            rec_rows, idx_rows = [], []
    conn.executemany("INSERT INTO rec VALUES (?, ?)", rec_rows)
    conn.executemany("INSERT INTO idx VALUES (?, ?, ?)", idx_rows)
    conn.execute(_INDEX)
    conn.execute("COMMIT")
    conn.close()
    manifest = Manifest(FORMAT, version, created, expires, count,
                        "sha256:" + file_sha256(path), path.stat().st_size, key_id, salt.hex())
    (out_dir / MANIFEST).write_bytes(sign_manifest(manifest, signing_key))
    return manifest


def verify_dir(src: Path, trusted: Mapping[str, Ed25519PublicKey]) -> Manifest:
    """Signature, known key, content hash and record count of a snapshot folder."""
    try:
        data = (src / MANIFEST).read_bytes()
    except OSError as e:
        raise CacheIntegrityError(f"manifest unreadable: {type(e).__name__}") from None
    manifest = parse_manifest(data, trusted)
    records = src / RECORDS
    try:
        size = records.stat().st_size
    except OSError as e:
        raise CacheIntegrityError(f"records file unreadable: {type(e).__name__}") from None
    check_size(manifest, size)
    check_hash(manifest, file_sha256(records))
    return manifest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def installed_manifest(cache_dir: Path,
                       trusted: Mapping[str, Ed25519PublicKey]) -> Manifest | None:
    current = cache_dir / CURRENT
    if not current.exists():
        return None
    return parse_manifest((current / MANIFEST).read_bytes(), trusted)


def _copy_hashing(src: Path, dst: Path,
                  copy: Callable[[IO[bytes], IO[bytes]], None] | None) -> str:
    h = hashlib.sha256()
    with src.open("rb") as fin, dst.open("wb") as fout:
        if copy is not None:
            copy(fin, fout)           # injected by tests: a disk that fills, a cut
            fout.flush()
        else:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    with dst.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def install(src: Path, cache_dir: Path, trusted: Mapping[str, Ed25519PublicKey], *,
            copy: Callable[[IO[bytes], IO[bytes]], None] | None = None) -> Manifest:
    """Verify and install atomically; on any failure the installed snapshot is untouched."""
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        manifest_bytes = (src / MANIFEST).read_bytes()
    except OSError as e:
        raise CacheIntegrityError(f"manifest unreadable: {type(e).__name__}") from None
    manifest = parse_manifest(manifest_bytes, trusted)
    try:
        current = installed_manifest(cache_dir, trusted)
    except (CacheError, OSError):
        current = None  # an unreadable installed snapshot is replaced, not trusted
    check_version(manifest, current.snapshot_version if current else None)
    name = f"v{manifest.snapshot_version}-{secrets.token_hex(3)}"
    link_path = cache_dir / CURRENT
    previous = link_path.readlink().name if link_path.is_symlink() else None
    try:
        check_size(manifest, (src / RECORDS).stat().st_size)
    except OSError as e:
        raise CacheIntegrityError(f"records file unreadable: {type(e).__name__}") from None
    staging = cache_dir / f".staging-{name}"
    staging.mkdir(mode=0o700)
    try:
        digest = _copy_hashing(src / RECORDS, staging / RECORDS, copy)
        check_hash(manifest, digest)
        (staging / MANIFEST).write_bytes(manifest_bytes)
        with (staging / MANIFEST).open("rb") as f:
            os.fsync(f.fileno())
        _fsync_dir(staging)
        staging.rename(cache_dir / name)
        link = cache_dir / f".current-{secrets.token_hex(3)}"
        link.symlink_to(name)
        link.replace(link_path)                     # the atomic switch
        _fsync_dir(cache_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    keep = {name, previous}  # the new snapshot and the one it replaced
    for old in cache_dir.iterdir():
        if old.is_dir() and not old.is_symlink() and old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return manifest


@dataclass(frozen=True, slots=True)
class Hit:
    record: dict[str, Any]
    manifest: Manifest


class Snapshot:
    """The installed snapshot, opened read-only. ``lookup`` is sub-millisecond."""

    def __init__(self, folder: Path, manifest: Manifest, reading_key: bytes) -> None:
        self.folder = folder
        self.manifest = manifest
        self._salt = bytes.fromhex(manifest.index_salt)
        self._key = reading_key
        self._conn = sqlite3.connect(f"file:{folder / RECORDS}?mode=ro&immutable=1", uri=True,
                                     check_same_thread=False)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, cache_dir: Path, trusted: Mapping[str, Ed25519PublicKey],
             reading_key: bytes, *, verify_hash: bool = True) -> Snapshot | None:
        current = cache_dir / CURRENT
        if not current.exists():
            return None
        folder = current.resolve()
        manifest = (verify_dir(folder, trusted) if verify_hash else
                    parse_manifest((folder / MANIFEST).read_bytes(), trusted))
        return cls(folder, manifest, reading_key)

    def lookup(self, identifier: str) -> Hit | None:
        keys = derive(self._key, self._salt, identifier)
        with self._lock:
            # the same identifier twice in an export: the later row wins
            row = self._conn.execute("SELECT rec, wrapped FROM idx WHERE h = ? "
                                     "ORDER BY rowid DESC LIMIT 1", (keys.index,)).fetchone()
            if row is None:
                return None
            sealed = self._conn.execute("SELECT sealed FROM rec WHERE id = ?",
                                        (row[0],)).fetchone()
        if sealed is None:
            raise CacheIntegrityError("a snapshot index points at no record")
        return Hit(open_record(keys, row[1], sealed[0]), self.manifest)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()


def default_expiry(created: datetime, days: int) -> datetime:
    return created + timedelta(days=days)


MAX_FETCH_BYTES = 64 << 30  # a 10 M-record snapshot is ~5 GB; refuse anything absurd


def fetch(base_url: str, dest: Path, *, timeout: float = 60.0) -> None:
    """Download ``manifest.json`` and ``records.db`` from the publisher into ``dest``.

    Nothing is trusted here: :func:`install` verifies signature, size and hash afterwards.
    """
    import urllib.request

    dest.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST, RECORDS):
        url = base_url.rstrip("/") + "/" + name
        if not url.startswith(("http://", "https://")):
            raise CacheError("snapshot URL must be http:// or https://")
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                (dest / name).open("wb") as out:  # noqa: S310 - scheme checked above
            total = 0
            while chunk := response.read(CHUNK):
                total += len(chunk)
                if total > MAX_FETCH_BYTES:
                    raise CacheIntegrityError("snapshot download is oversized")
                out.write(chunk)
