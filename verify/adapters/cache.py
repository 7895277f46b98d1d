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
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verify.snapshot import (
    FORMAT,
    MAX_HIGH_WATER_BYTES,
    MAX_MANIFEST_BYTES,
    CacheError,
    CacheIntegrityError,
    DeskTerms,
    HighWater,
    Manifest,
    check_hash,
    check_high_water,
    check_scope,
    check_size,
    check_version,
    derive,
    high_water_bytes,
    identifiers,
    open_record,
    parse_high_water,
    parse_manifest,
    raise_high_water,
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
NO_CODE_DESK = DeskTerms()  # no facility code, no clock: takes only snapshots for every facility


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def build(records: Iterable[Mapping[str, Any]], out_dir: Path, *, signing_key: Ed25519PrivateKey,
          key_id: str, reading_key: bytes, version: int, created: datetime,
          expires: datetime, facility: str | None = None, batch: int = 20000) -> Manifest:
    """Write ``records.db`` and a signed ``manifest.json`` into ``out_dir``; ``facility``:
    the facility a subset is for (only its desks take it), None for every desk."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RECORDS
    path.unlink(missing_ok=True)
    salt = secrets.token_bytes(16)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=4096;"
                       "PRAGMA cache_size=-262144; PRAGMA temp_store=FILE;"
                       "PRAGMA secure_delete=ON;" + _SCHEMA)
    rec_rows: list[tuple[int, bytes]] = []
    idx_rows: list[tuple[bytes, int, bytes]] = []
    conn.execute("BEGIN")
    for number, record in enumerate(records, start=1):
        record_key = secrets.token_bytes(16)
        rec_rows.append((number, seal_record(record, record_key)))
        for ident in identifiers(record):
            keys = derive(reading_key, salt, ident)
            idx_rows.append((keys.index, number, wrap_key(keys, record_key)))
        if len(rec_rows) >= batch:
            conn.executemany("INSERT INTO rec VALUES (?, ?)", rec_rows)
            conn.executemany("INSERT INTO idx VALUES (?, ?, ?)", idx_rows)
            rec_rows, idx_rows = [], []
    conn.executemany("INSERT INTO rec VALUES (?, ?)", rec_rows)
    conn.executemany("INSERT INTO idx VALUES (?, ?, ?)", idx_rows)
    conn.execute(_INDEX)
    count = _keep_last_of_each_person(conn)
    conn.execute("COMMIT")
    conn.close()
    manifest = Manifest(FORMAT, version, created, expires, count,
                        "sha256:" + file_sha256(path), path.stat().st_size, key_id, salt.hex(),
                        facility)
    (out_dir / MANIFEST).write_bytes(sign_manifest(manifest, signing_key))
    return manifest


def _keep_last_of_each_person(conn: sqlite3.Connection) -> int:
    """The same identifier in two rows of an export (a re-issued card, a person listed
    twice): the later row stands for the person, and every earlier row sharing an identifier
    with it is removed whole — its record and all its index rows, zeroed in the file by
    ``secure_delete``. Kept per identifier, a lookup by the BHXH number found the new card
    and one by the CCCD number the superseded one; and each duplicate was wrapped under the
    same identifier-derived key and fixed nonce (two AES-GCM messages under one key/nonce
    pair show they share an identifier and let the authenticator be solved for). One
    ciphertext per key. Returns how many records remain."""
    if conn.execute("SELECT 1 FROM idx GROUP BY h HAVING COUNT(*) > 1 LIMIT 1").fetchone():
        conn.execute("CREATE TEMP TABLE superseded AS SELECT DISTINCT a.rec AS rec FROM idx a "
                     "JOIN idx b ON a.h = b.h AND b.rec > a.rec")
        conn.execute("DELETE FROM idx WHERE rec IN (SELECT rec FROM superseded)")
        conn.execute("DELETE FROM rec WHERE id IN (SELECT rec FROM superseded)")
        conn.execute("DROP TABLE superseded")
    return int(conn.execute("SELECT COUNT(*) FROM rec").fetchone()[0])


def _regular(path: Path, what: str) -> int:
    """The size of a regular file; a device (/dev/zero), a pipe or a missing file is refused
    before it is opened (opening a FIFO would block; a device never ends)."""
    try:
        st = path.lstat()
    except OSError as e:
        raise CacheIntegrityError(f"{what} unreadable: {type(e).__name__}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CacheIntegrityError(f"{what} is not a regular file")
    return st.st_size


def read_manifest(path: Path) -> bytes:
    """At most MAX_MANIFEST_BYTES + 1 bytes: an oversized manifest is refused unread."""
    _regular(path, "manifest")
    try:
        with path.open("rb") as f:
            return f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise CacheIntegrityError(f"manifest unreadable: {type(e).__name__}") from None


def verify_dir(src: Path, trusted: Mapping[str, Ed25519PublicKey]) -> Manifest:
    """Signature, known key, content hash and record count of a snapshot folder."""
    manifest = parse_manifest(read_manifest(src / MANIFEST), trusted)
    verify_records(src, manifest)
    return manifest


def verify_records(src: Path, manifest: Manifest) -> None:
    """The records file is the one the manifest signed: its size, then its hash."""
    records = src / RECORDS
    check_size(manifest, _regular(records, "records file"))
    check_hash(manifest, file_sha256(records))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def installed_manifest(cache_dir: Path,
                       trusted: Mapping[str, Ed25519PublicKey]) -> Manifest | None:
    """The installed snapshot's manifest, its signature checked (not its records)."""
    current = cache_dir / CURRENT
    if not current.exists():
        return None
    return parse_manifest(read_manifest(current / MANIFEST), trusted)


def installed_for(cache_dir: Path, trusted: Mapping[str, Ed25519PublicKey], facility: str, *,
                  whole: bool = False) -> Manifest | None:
    """The installed snapshot as far as this desk can count on it — what a new one is
    measured against: None when there is none, its manifest does not verify, it is another
    facility's (installed before the desk's code changed: it must not keep the desk's own
    snapshot out as a "rollback"), or, with ``whole``, its records file is not the signed
    one (the fetch must then download again, not say "already installed")."""
    try:
        manifest = installed_manifest(cache_dir, trusted)
        if manifest is None:
            return None
        check_scope(manifest, facility)
        if whole:
            verify_records((cache_dir / CURRENT).resolve(), manifest)
    except (CacheError, OSError):
        return None
    return manifest


def _private_file(path: Path) -> int:
    """A new file only its owner reads (the snapshot's files: personal data, sealed)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def _copy_hashing(src: Path, dst: Path,
                  copy: Callable[[IO[bytes], IO[bytes]], None] | None) -> str:
    h = hashlib.sha256()
    with src.open("rb") as fin, os.fdopen(_private_file(dst), "wb") as fout:
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
            terms: DeskTerms = NO_CODE_DESK,
            copy: Callable[[IO[bytes], IO[bytes]], None] | None = None) -> Manifest:
    """Verify and install atomically; on any failure the installed snapshot is untouched.
    ``terms``: what this desk takes (its facility; with a clock, nothing it would not use).
    One install at a time (the timer's and an operator's): the second waits."""
    make_private_dir(cache_dir)
    with _install_lock(cache_dir):
        return _install(src, cache_dir, trusted, terms, copy)


@contextlib.contextmanager
def _install_lock(cache_dir: Path) -> Iterator[None]:
    fd = os.open(cache_dir / ".install.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


HIGH_WATER = ".high-water.json"


def read_high_water(cache_dir: Path) -> HighWater:
    try:
        with (cache_dir / HIGH_WATER).open("rb") as f:
            return parse_high_water(f.read(MAX_HIGH_WATER_BYTES))
    except OSError:
        return {}


def _write_high_water(cache_dir: Path, marks: HighWater) -> None:
    tmp = cache_dir / f".high-water-{secrets.token_hex(3)}"
    with os.fdopen(_private_file(tmp), "wb") as f:
        f.write(high_water_bytes(marks))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(cache_dir / HIGH_WATER)
    _fsync_dir(cache_dir)


def make_private_dir(path: Path) -> None:
    """``path`` and any missing parent (the data folder) created 0700 — ``mkdir(parents=)``
    gives the parents the umask's mode."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)


def _install(src: Path, cache_dir: Path, trusted: Mapping[str, Ed25519PublicKey],
             terms: DeskTerms, copy: Callable[[IO[bytes], IO[bytes]], None] | None) -> Manifest:
    manifest_bytes = read_manifest(src / MANIFEST)
    manifest = parse_manifest(manifest_bytes, trusted)
    terms.check(manifest)
    # an unreadable, or another facility's, installed snapshot is replaced, not trusted
    check_version(manifest, installed_for(cache_dir, trusted, terms.facility))
    marks = read_high_water(cache_dir)
    check_high_water(manifest, marks)  # older than anything this desk had: even so refused
    name = f"v{manifest.snapshot_version}-{secrets.token_hex(3)}"
    link_path = cache_dir / CURRENT
    previous = link_path.readlink().name if link_path.is_symlink() else None
    check_size(manifest, _regular(src / RECORDS, "records file"))
    staging = cache_dir / f".staging-{name}"
    staging.mkdir(mode=0o700)
    try:
        digest = _copy_hashing(src / RECORDS, staging / RECORDS, copy)
        check_hash(manifest, digest)
        with os.fdopen(_private_file(staging / MANIFEST), "wb") as f:
            f.write(manifest_bytes)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(staging)
        staging.rename(cache_dir / name)
        link = cache_dir / f".current-{secrets.token_hex(3)}"
        link.symlink_to(name)
        link.replace(link_path)                     # the atomic switch
        _fsync_dir(cache_dir)
        try:
            _write_high_water(cache_dir, raise_high_water(marks, manifest))
        except OSError as e:  # installed all the same; the mark is raised at the next one
            log.warning("snapshot high-water mark not written: %s", type(e).__name__)
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
             reading_key: bytes, *, facility: str = "",
             verify_hash: bool = True) -> Snapshot | None:
        """The installed snapshot, checked (signature, hash unless ``verify_hash`` is off,
        and that it is for this desk's ``facility``); None when none is installed."""
        current = cache_dir / CURRENT
        if not current.exists():
            return None
        folder = current.resolve()
        manifest = parse_manifest(read_manifest(folder / MANIFEST), trusted)
        check_scope(manifest, facility)  # before the hash: a refusal costs no full read
        check_high_water(manifest, read_high_water(cache_dir))  # `current` pointed back
        if verify_hash:
            verify_records(folder, manifest)
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


FETCH_DEADLINE_SECONDS = 900.0  # the whole download; a mirror that trickles is given up
MANIFEST_DEADLINE_SECONDS = 60.0  # the manifest is at most 64 KiB: a minute is plenty
MIN_RATE_BYTES_PER_SECOND = 16 * 1024  # records.db's average rate after the grace period
RATE_GRACE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Pace:
    """How slowly a mirror may send before it is refused: a hard ``deadline`` (monotonic)
    and, after ``grace`` seconds, a minimum average rate."""

    deadline: float
    min_rate: float = 0.0
    grace: float = RATE_GRACE_SECONDS

    def check(self, started: float, now: float, total: int) -> None:
        if now > self.deadline:
            raise CacheIntegrityError("snapshot download took too long")
        late = now - started - self.grace
        if self.min_rate and late > 0 and total < self.min_rate * late:
            raise CacheIntegrityError("snapshot download too slow: the mirror is trickling")


def _download(url: str, out: Path, *, limit: int, pace: Pace, timeout: float) -> None:
    """At most ``limit`` bytes from ``url`` into ``out`` at ``pace``: a mirror that sends
    more, or too slowly, is refused and nothing past the limit is written (TUF's endless-data
    and slow-retrieval attacks)."""
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise CacheError("snapshot URL must be http:// or https://")
    started = time.monotonic()
    remaining = pace.deadline - started
    if remaining <= 0:
        raise CacheIntegrityError("snapshot download took too long")
    with urllib.request.urlopen(url, timeout=min(timeout, remaining)) as response, \
            out.open("wb") as f:  # noqa: S310 - scheme checked above
        total = 0
        while True:
            pace.check(started, time.monotonic(), total)
            chunk = response.read1(min(CHUNK, limit + 1 - total))  # what has arrived
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                raise CacheIntegrityError("snapshot download is larger than its manifest says")
            f.write(chunk)


def fetch(base_url: str, dest: Path, trusted: Mapping[str, Ed25519PublicKey], *,
          timeout: float = 60.0, deadline_seconds: float = FETCH_DEADLINE_SECONDS,
          manifest_seconds: float = MANIFEST_DEADLINE_SECONDS,
          min_rate: float = MIN_RATE_BYTES_PER_SECOND,
          grace_seconds: float = RATE_GRACE_SECONDS,
          installed: Manifest | None = None, terms: DeskTerms = NO_CODE_DESK) -> Manifest:
    """Download the publisher's snapshot into ``dest``: the manifest first (capped, within
    its own short deadline, and its signature checked before anything else is fetched), then
    ``records.db`` — never more bytes than the signed manifest names, at ``min_rate`` on
    average once ``grace_seconds`` have passed, and all of it within ``deadline_seconds``. A
    trickling mirror is refused in about a minute. :func:`install` verifies the hash
    afterwards.

    ``installed``: the desk's snapshot. A signed manifest naming the same snapshot (version
    and content hash) ends the fetch there — ``records.db`` is not downloaded again (see
    :func:`is_same_snapshot`; pass it only when its records verified, see
    :func:`installed_for`); an older version, or one the desk does not take (``terms``:
    another facility's, made in the future, too old), is refused before anything more is
    fetched.
    """
    now = time.monotonic()
    deadline = now + deadline_seconds
    dest.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/") + "/"
    _download(base + MANIFEST, dest / MANIFEST, limit=MAX_MANIFEST_BYTES,
              pace=Pace(min(deadline, now + manifest_seconds)), timeout=timeout)
    manifest = parse_manifest(read_manifest(dest / MANIFEST), trusted)
    terms.check(manifest)
    if installed is not None:
        if is_same_snapshot(manifest, installed):
            return manifest
        check_version(manifest, installed)  # a rollback or a reused version: refused here
    _download(base + RECORDS, dest / RECORDS, limit=manifest.records_size,
              pace=Pace(deadline, min_rate, grace_seconds), timeout=timeout)
    return manifest


def is_same_snapshot(manifest: Manifest, installed: Manifest | None) -> bool:
    """The publisher still offers what is installed: same signed version, same content."""
    return (installed is not None and manifest.snapshot_version == installed.snapshot_version
            and manifest.content_hash == installed.content_hash)
