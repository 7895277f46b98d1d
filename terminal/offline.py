"""Offline answers: the journal of recent online answers and the installed signed snapshot.

The order is fixed by policy (issue 4): online first within the budget; then the journal;
then the snapshot. Every answer from here carries ``source="cache"`` and its ``data_as_of``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from terminal.settings import check_terminal_key
from verify.adapters.cache import Snapshot
from verify.adapters.journal import Journal
from verify.errors import CardCodeError, VerifyError
from verify.model import VN_TZ, BirthDate, Credential, Sex, parse_birth_date
from verify.registry import RegistryAnswer, answer_from_json, answer_to_json
from verify.snapshot import (
    CacheIntegrityError,
    age_days,
    lookup_identifier,
    parse_iso_day,
    usability,
)

log = logging.getLogger(__name__)
TERMINAL_KEY = "terminal.key"
# What ``tiepdon cache fetch`` (the snapshot timer's service) leaves in the data folder for the
# daemon's tiepdon_snapshot_fetch_ok: {"ok", "at", "version", "downloaded", "reason"}.
FETCH_STATUS = "snapshot-fetch.json"
MAX_FETCH_STATUS_BYTES = 4096
MAX_REASON = 300  # characters of a failed fetch's reason kept in the status


def write_fetch_status(data_dir: Path, *, ok: bool, at: datetime, version: int | None,
                       downloaded: bool, reason: str = "") -> None:
    """Replace the status file in one rename (the daemon never reads half of one)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    doc = {"ok": ok, "at": at.isoformat(), "version": version, "downloaded": downloaded,
           "reason": " ".join(reason.split())[:MAX_REASON]}  # one line, and the file small
    tmp = data_dir / f".{FETCH_STATUS}.{secrets.token_hex(3)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    tmp.replace(data_dir / FETCH_STATUS)


def read_fetch_status(path: Path) -> dict[str, Any] | None:
    """The last fetch's status; None when there is none or it cannot be read (never an
    exception: a scrape must not fail on it)."""
    try:
        with path.open("rb") as f:
            doc = json.loads(f.read(MAX_FETCH_STATUS_BYTES))
        at = datetime.fromisoformat(str(doc["at"]))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(doc, dict) or at.tzinfo is None:
        return None
    return {**doc, "ok": doc.get("ok") is True, "at": at}


def load_terminal_key(data_dir: Path) -> bytes:
    """The terminal's own secret: a systemd credential in production
    (``LoadCredential=terminal.key:…`` → ``$CREDENTIALS_DIRECTORY``), else a 0600 file in the
    data folder, created on first use. Never in the config, never logged."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / TERMINAL_KEY).is_file():
        return check_terminal_key((Path(creds) / TERMINAL_KEY).read_bytes(), "(systemd credential)")
    path = data_dir / TERMINAL_KEY
    try:
        return check_terminal_key(path.read_bytes(), str(path))
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def credential_identifiers(credential: Credential, answer: RegistryAnswer | None = None
                           ) -> list[str]:
    """Every identifier under which this person can be found again."""
    out: list[str] = []
    for text in (credential.id_number, credential.card_code,
                 answer.card_code if answer else None, answer.bhxh_number if answer else None):
        if not text:
            continue
        try:
            ident = lookup_identifier(text)
        except (CardCodeError, ValueError):
            continue
        if ident not in out:
            out.append(ident)
    return out


def snapshot_answer(record: Mapping[str, Any]) -> RegistryAnswer:
    dob_text = record.get("date_of_birth")
    dob: BirthDate | None = None
    if dob_text:
        try:
            dob = parse_birth_date(str(dob_text))  # ISO date or a bare year
        except VerifyError:
            dob = None
    sex = record.get("sex")
    return RegistryAnswer(
        code="000", card_code=record.get("card_code"), full_name=record.get("full_name"),
        date_of_birth=dob, sex=Sex(sex) if sex in ("male", "female") else None,
        registered_facility=record.get("registered_facility"),
        valid_from=parse_iso_day(record.get("valid_from")),
        valid_to=parse_iso_day(record.get("valid_to")),
        area_code=record.get("area_code") or None,
        five_years_date=parse_iso_day(record.get("five_years_date")),
        bhxh_number=record.get("bhxh_number"),
    )


@dataclass(frozen=True, slots=True)
class OfflineHit:
    answer: RegistryAnswer
    data_as_of: datetime
    notice: str
    values: dict[str, str]
    expired_days: float | None = None
    from_snapshot: bool = False  # no gateway answer behind it: no registry code
    journal_tampered: bool = False  # a newer answer may have been deleted: review


class OfflineStore:
    def __init__(self, *, journal: Journal | None, cache_dir: Path,
                 trusted: Mapping[str, Ed25519PublicKey], reading_key: bytes | None,
                 max_age_days: float, now: Callable[[], datetime] | None = None,
                 facility: str = "") -> None:
        self.journal = journal
        self.facility = facility  # this desk's code: another facility's subset is not used
        self.cache_dir = cache_dir
        self.trusted = trusted
        self.reading_key = reading_key
        self.max_age_days = max_age_days
        self._now = now or (lambda: datetime.now(UTC))
        self.snapshot: Snapshot | None = None
        self.status = "down"
        self.reason = "no snapshot installed"
        self._refused: Path | None = None  # the installed folder last refused (not re-read)

    def load(self) -> None:
        """(Re)open the installed snapshot, checking signature and content hash. Blocking."""
        if self.reading_key is None or not self.trusted:
            self.status, self.reason = "down", "no trusted keys / reading key configured"
            return
        try:
            snapshot = Snapshot.open(self.cache_dir, self.trusted, self.reading_key,
                                     facility=self.facility)
        except (VerifyError, OSError) as e:
            self._refuse(getattr(e, "detail", type(e).__name__), type(e).__name__)
            return
        self._refused = None
        old, self.snapshot = self.snapshot, snapshot
        if old is not None:
            old.close()
        if snapshot is None:
            self.status, self.reason = "down", "no snapshot installed"
            return
        self._refresh_status()

    def _refuse(self, reason: str, what: str) -> None:
        """The installed snapshot is not used (down, with why), and not read again until
        ``current`` points elsewhere: a refused 5 GB file is not re-hashed every probe."""
        log.error("installed snapshot refused: %s", what)
        old, self.snapshot = self.snapshot, None
        if old is not None:
            old.close()
        self.status, self.reason = "down", reason
        current = self.cache_dir / "current"
        self._refused = current.resolve() if current.exists() else None

    def reload_if_changed(self) -> bool:
        """Reopen when ``current`` points elsewhere (the timer installed a snapshot)."""
        current = self.cache_dir / "current"
        target = current.resolve() if current.exists() else None
        loaded = self.snapshot.folder if self.snapshot is not None else None
        if target == loaded or (target is not None and target == self._refused):
            return False
        self.load()
        return True

    def _refresh_status(self) -> None:
        snapshot = self.snapshot
        if snapshot is None:
            return
        self.status, self.reason = usability(snapshot.manifest, self._now(), self.max_age_days)

    def remember(self, credential: Credential, answer: RegistryAnswer, at: datetime) -> None:
        if self.journal is None:
            return
        idents = credential_identifiers(credential, answer)
        if idents:
            self.journal.put(idents, answer_to_json(answer), at)

    def lookup(self, credential: Credential) -> OfflineHit | None:
        now = self._now()
        idents = credential_identifiers(credential)
        if self.journal is not None:
            for ident in idents:
                entry = self.journal.get(ident, now)
                if entry is not None:
                    return OfflineHit(answer_from_json(entry.answer),
                                      entry.at.astimezone(VN_TZ), "offline_journal",
                                      {"time": entry.at.astimezone(VN_TZ).strftime(
                                          "%H:%M %d/%m/%Y")})
        snapshot = self.snapshot
        if snapshot is None:
            return None
        self._refresh_status()
        if self.status == "down":
            return None  # past the hard limit: not used at all
        m = snapshot.manifest
        for ident in idents:
            try:
                hit = snapshot.lookup(ident)
            except CacheIntegrityError as e:  # the file changed on disk after it was checked
                self._refuse(f"installed snapshot damaged: {e.detail}", type(e).__name__)
                return None
            if hit is not None:
                expired = age_days(m, now) if now > m.expires else None
                tampered = self.journal is not None and not self.journal.intact(now)
                if tampered:
                    log.warning("journal seal broken: rows were removed or added offline")
                return OfflineHit(snapshot_answer(hit.record), m.created.astimezone(VN_TZ),
                                  "offline_snapshot",
                                  {"version": str(m.snapshot_version),
                                   "date": m.created.astimezone(VN_TZ).strftime("%d/%m/%Y")},
                                  expired, from_snapshot=True, journal_tampered=tampered)
        return None

    def health(self) -> dict[str, Any]:
        self._refresh_status()
        out: dict[str, Any] = {"status": self.status, "reason": self.reason}
        if self.snapshot is not None:
            out["snapshot_version"] = self.snapshot.manifest.snapshot_version
            out["snapshot_created"] = self.snapshot.manifest.created.isoformat()
        if self.journal is not None:
            out["journal_rows_tampered"] = self.journal.tampered
            out["journal_intact"] = self.journal.intact(self._now())
        return out

    def purge(self) -> None:
        if self.journal is not None:
            self.journal.purge(self._now())


def retention(hours: float) -> timedelta:
    return timedelta(hours=hours)
