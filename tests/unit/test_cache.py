"""Signed snapshots and the journal on real files: build, verify, install, look up, refuse."""

from __future__ import annotations

import errno
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.offline import OfflineStore
from tests.helpers.cache import CSV, NOW, READING, Publisher, records
from verify.adapters.cache import (
    MANIFEST,
    RECORDS,
    Snapshot,
    install,
    installed_manifest,
    verify_dir,
)
from verify.adapters.journal import Journal
from verify.snapshot import (
    CacheError,
    CacheIntegrityError,
    DeskTerms,
    lookup_identifier,
    parse_trusted_keys,
    public_key_text,
    records_from_csv,
)


def test_build_install_lookup(tmp_path: Path) -> None:
    pub = Publisher()
    src = pub.build(tmp_path / "snap")
    manifest = install(src, tmp_path / "cache", pub.trusted)
    assert manifest.record_count == 3
    snap = Snapshot.open(tmp_path / "cache", pub.trusted, READING)
    assert snap is not None
    by_card = snap.lookup(lookup_identifier("GD4010111077012"))      # card code → BHXH number
    by_bhxh = snap.lookup(lookup_identifier("0111077012"))
    by_cccd = snap.lookup(lookup_identifier("001088004321"))
    assert by_card and by_bhxh and by_cccd
    assert by_card.record == by_bhxh.record == by_cccd.record
    assert by_card.record["full_name"] == "Nguyễn Tiến Đạt"
    assert by_card.record["date_of_birth"] == "1988-03-29"
    assert by_card.record["five_years_date"] == "2027-10-01"
    legacy = snap.lookup(lookup_identifier("DN479GA78900007"))         # letters in the tail
    assert legacy and legacy.record["area_code"] == "K2"
    assert snap.lookup(lookup_identifier("0999999999")) is None


def test_a_copied_file_gives_nothing_away(tmp_path: Path) -> None:
    src = Publisher().build(tmp_path / "snap")
    raw = (src / RECORDS).read_bytes() + (src / MANIFEST).read_bytes()
    for secret in ("Nguyễn Tiến Đạt", "NGUY", "Đoàn", "1988-03-29", "29/03/1988",
                   "001088004321", "0111077012", "GD4010111077012", "01C54"):
        assert secret.encode() not in raw
    # Without the reading key the index cannot even be searched.
    pub = Publisher()
    src2 = pub.build(tmp_path / "snap2")
    install(src2, tmp_path / "cache", pub.trusted)
    wrong = Snapshot.open(tmp_path / "cache", pub.trusted, bytes(32))
    assert wrong is not None and wrong.lookup(lookup_identifier("0111077012")) is None


def test_a_person_listed_twice_is_the_later_row_by_every_identifier(tmp_path: Path) -> None:
    """Two rows of an export share a CCCD number (a card re-issued under a new BHXH number).
    Each wrapped its record key under the same identifier-derived key with the same fixed
    nonce — two AES-GCM messages under one key/nonce pair in a file that leaves the
    publisher; and kept per identifier, the old row still answered by its own BHXH number
    (and, the other way round, by a CCCD the new row lacks). Now the later row stands for
    the person: the earlier one is gone whole, exactly one ciphertext under the shared key
    is anywhere in the file's bytes (deleted rows zeroed), and the count says so."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from verify.snapshot import derive

    first, *rest = records()
    again = {**rest[0], "cccd_number": first["cccd_number"], "bhxh_number": "0200000099"}
    pub = Publisher()
    src = pub.build(tmp_path / "snap", rows=[first, *rest, again])
    manifest = install(src, tmp_path / "cache", pub.trusted)
    assert manifest.record_count == len(rest) + 1
    snap = Snapshot.open(tmp_path / "cache", pub.trusted, READING)
    assert snap is not None
    hit = snap.lookup(lookup_identifier(str(first["cccd_number"])))
    assert hit is not None and hit.record["bhxh_number"] == "0200000099"  # the later row
    assert snap.lookup(lookup_identifier(str(first["bhxh_number"]))) is None  # superseded
    salt = bytes.fromhex(manifest.index_salt)
    keys = derive(READING, salt, "cccd:" + str(first["cccd_number"]))
    raw = (tmp_path / "cache" / "current" / RECORDS).read_bytes()
    opened = 0
    for at in range(len(raw) - 31):
        try:
            AESGCM(keys.wrap).decrypt(bytes(12), raw[at:at + 32], keys.index)
            opened += 1
        except InvalidTag:
            continue
    assert opened == 1
    # The reviewer's case: the old card (BHXH A + CCCD X, valid to 2025) then the new card
    # (BHXH A, no CCCD, valid to 2026): the CCCD no longer finds the old card.
    old = {**first, "valid_to": "2025-12-31"}
    new = {**first, "cccd_number": None, "valid_to": "2026-12-31"}
    src = pub.build(tmp_path / "snap2", version=2, rows=[old, new])
    install(src, tmp_path / "cache", pub.trusted)
    snap = Snapshot.open(tmp_path / "cache", pub.trusted, READING)
    assert snap is not None
    by_bhxh = snap.lookup(lookup_identifier(str(first["bhxh_number"])))
    assert by_bhxh is not None and by_bhxh.record["valid_to"] == "2026-12-31"
    assert snap.lookup(lookup_identifier(str(first["cccd_number"]))) is None


def test_key_rotation_accepts_either_key(tmp_path: Path) -> None:
    old, new = Publisher("k-old"), Publisher("k-new")
    trusted = {**old.trusted, **new.trusted}
    install(old.build(tmp_path / "a", version=1), tmp_path / "cache", trusted)
    install(new.build(tmp_path / "b", version=2), tmp_path / "cache", trusted)
    current = installed_manifest(tmp_path / "cache", trusted)
    assert current is not None and current.key_id == "k-new"


def test_trusted_key_entries() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    keys = parse_trusted_keys([f"a:{public_key_text(key)}"])
    assert set(keys) == {"a"}
    for bad in ["nocolon", "a:!!!", "a:" + "QUJD"]:
        with pytest.raises(CacheError):
            parse_trusted_keys([bad])


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def refused_cases(tmp_path: Path, pub: Publisher) -> dict[str, tuple[Path, str]]:
    cases: dict[str, tuple[Path, str]] = {}

    def fresh(name: str) -> Path:
        return pub.build(tmp_path / name, version=5)

    d = fresh("truncated")
    (d / RECORDS).write_bytes((d / RECORDS).read_bytes()[:4096])
    cases["truncated"] = (d, "records file is truncated")
    d = fresh("zero_records")
    (d / RECORDS).write_bytes(b"")
    cases["zero_records"] = (d, "records file is empty")
    d = fresh("zero_manifest")
    (d / MANIFEST).write_bytes(b"")
    cases["zero_manifest"] = (d, "manifest is empty")
    d = fresh("not_json")
    (d / MANIFEST).write_bytes(b"PK\x03\x04 zip?")
    cases["not_json"] = (d, "manifest is not JSON")
    d = fresh("wrong_fields")
    (d / MANIFEST).write_bytes(b'{"format": 1}')
    cases["wrong_fields"] = (d, "fields are not the expected ones")
    d = fresh("oversized")
    (d / MANIFEST).write_bytes(b" " * (70 * 1024))
    cases["oversized"] = (d, "manifest is oversized")
    d = Publisher("stranger").build(tmp_path / "unknown_key", version=5)
    cases["unknown_key"] = (d, "unknown key (stranger)")
    d = fresh("bad_signature")
    text = (d / MANIFEST).read_text().replace('"record_count": 3', '"record_count": 4')
    assert '"record_count": 4' in text
    (d / MANIFEST).write_text(text)
    cases["bad_signature"] = (d, "signature does not verify")
    d = fresh("bit_flip")
    _flip(d / RECORDS, 5000)
    cases["bit_flip"] = (d, "does not match the manifest's content hash")
    d = pub.build(tmp_path / "rolled_back", version=3)
    cases["rollback"] = (d, "older than the installed 4 (rollback refused)")
    # Signed, the installed version, other records (another facility's subset, say): it
    # installed over the desk's own.
    d = pub.build(tmp_path / "same_version_other_content", version=4, rows=records()[:2])
    cases["reused_version"] = (d, "version 4 is installed with other content")
    # A facility's subset: its facility is signed (dropped or changed, the signature fails),
    # must be a facility code, and must be this desk's (the desk in these cases has none).
    d = pub.build(tmp_path / "scope_dropped", version=5, facility="01C54")
    text = (d / MANIFEST).read_text().replace('"facility": "01C54",', "")
    assert "facility" not in text
    (d / MANIFEST).write_text(text)
    cases["scope_dropped"] = (d, "signature does not verify")
    d = pub.build(tmp_path / "scope_changed", version=5, facility="01C54")
    (d / MANIFEST).write_text((d / MANIFEST).read_text().replace("01C54", "79012"))
    cases["scope_changed"] = (d, "signature does not verify")
    d = pub.build(tmp_path / "scope_malformed", version=5, facility="01c5")
    cases["scope_malformed"] = (d, "not a 5-character facility code")
    d = pub.build(tmp_path / "other_facility", version=5, facility="79012")
    cases["other_facility"] = (d, "snapshot is for facility 79012, this desk is not set")
    return cases


def test_each_bad_snapshot_is_refused_with_its_own_message(tmp_path: Path) -> None:
    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "good", version=4), cache, pub.trusted)
    before = (cache / "current").resolve()
    messages = set()
    for name, (folder, message) in refused_cases(tmp_path, pub).items():
        with pytest.raises(CacheIntegrityError) as info:
            install(folder, cache, pub.trusted)
        assert message in info.value.detail, name
        messages.add(info.value.detail)
        # nothing installed is lost
        assert (cache / "current").resolve() == before, name
        snap = Snapshot.open(cache, pub.trusted, READING)
        assert snap is not None and snap.manifest.snapshot_version == 4
        assert snap.lookup(lookup_identifier("0111077012")) is not None
    assert len(messages) >= 9
    assert not [p for p in cache.iterdir() if p.name.startswith(".staging")]


def test_verify_alone_checks_everything(tmp_path: Path) -> None:
    pub = Publisher()
    assert verify_dir(pub.build(tmp_path / "ok"), pub.trusted).record_count == 3
    bad = pub.build(tmp_path / "bad")
    _flip(bad / RECORDS, 4200)
    with pytest.raises(CacheIntegrityError):
        verify_dir(bad, pub.trusted)


def test_disk_full_mid_install_keeps_the_old_snapshot(tmp_path: Path) -> None:
    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "v1", version=1), cache, pub.trusted)

    def disk_fills(src: IO[bytes], dst: IO[bytes]) -> None:
        dst.write(src.read(8192))
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        install(pub.build(tmp_path / "v2", version=2), cache, pub.trusted, copy=disk_fills)
    current = installed_manifest(cache, pub.trusted)
    assert current is not None and current.snapshot_version == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".staging")]


def test_installed_files_are_checked_on_open(tmp_path: Path) -> None:
    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "v1"), cache, pub.trusted)
    _flip((cache / "current").resolve() / RECORDS, 6000)
    with pytest.raises(CacheIntegrityError):
        Snapshot.open(cache, pub.trusted, READING)


@pytest.mark.parametrize(("row", "message"), [
    ("XX,,,A,1990,Nam,,,,,", "CSV line 2"),
    ("GD4010111077012,12,,A,1990,Nam,,,,,", "bhxh_number"),
    ("GD4010111077012,,123,A,1990,Nam,,,,,", "cccd_number"),
    ("GD4010111077012,,,,1990,Nam,,,,,", "full_name"),
    ("GD4010111077012,,,A,31/02/1990,Nam,,,,,", "CSV line 2"),
    ("GD4010111077012,,,A,1990,Nam,,,,K7,", "area_code"),
])
def test_bad_csv_rows_name_their_line(row: str, message: str) -> None:
    header = CSV.splitlines()[0]
    with pytest.raises(CacheError, match=message) as info:
        list(records_from_csv([header + "\n", row + "\n"]))
    assert "GD4010111077012" not in info.value.detail


# -- journal ----------------------------------------------------------------------------------
def test_journal_round_trip_tamper_and_purge(tmp_path: Path) -> None:
    j = Journal(tmp_path, b"k" * 32, retention=timedelta(hours=24))
    j.put(["bhxh:0111077012", "cccd:001088004321"], {"code": "000", "full_name": "X"}, NOW)
    assert j.get("cccd:001088004321", NOW + timedelta(hours=1)).answer["code"] == "000"  # type: ignore[union-attr]
    assert j.get("bhxh:0999999999", NOW) is None
    assert j.get("bhxh:0111077012", NOW + timedelta(hours=25)) is None  # past retention
    raw = (tmp_path / "journal.db").read_bytes()
    assert b"0111077012" not in raw and b'"X"' not in raw
    assert (tmp_path / "journal.db").stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(tmp_path / "journal.db")  # an edit by hand
    conn.execute("UPDATE entry SET at = '2099-01-01T00:00:00+00:00'")
    conn.commit()
    conn.close()
    assert j.get("bhxh:0111077012", NOW) is None
    assert j.tampered == 1
    j.put(["bhxh:0111077012"], {"code": "000"}, NOW - timedelta(hours=30))
    assert j.purge(NOW) >= 1


def test_a_journal_row_dated_ahead_is_no_answer_and_is_purged(tmp_path: Path) -> None:
    """Written while the desk's clock ran a year fast, then the clock was mended: the row was
    served as a fresh answer for a year and outlived the retention — purge kept it."""
    j = Journal(tmp_path, b"k" * 32, retention=timedelta(hours=24))
    j.put(["bhxh:0111077012"], {"code": "000"}, NOW + timedelta(days=365))
    j.put(["bhxh:0200000001"], {"code": "000"}, NOW + timedelta(minutes=2))  # drift: fine
    assert j.get("bhxh:0111077012", NOW) is None
    assert j.get("bhxh:0200000001", NOW) is not None
    assert j.purge(NOW + timedelta(days=30)) == 2  # the one ahead, and the one now too old
    assert j.tampered == 0 and j.intact(NOW + timedelta(days=30))


def test_journal_with_another_terminals_key_reads_nothing(tmp_path: Path) -> None:
    Journal(tmp_path, b"a" * 32, retention=timedelta(hours=24)).put(
        ["bhxh:0111077012"], {"code": "000"}, NOW)
    other = Journal(tmp_path, b"b" * 32, retention=timedelta(hours=24))
    assert other.get("bhxh:0111077012", NOW) is None


def test_a_journal_row_deleted_by_hand_breaks_the_seal(tmp_path: Path) -> None:
    j = Journal(tmp_path, b"k" * 32, retention=timedelta(hours=24))
    assert j.intact()
    j.put(["bhxh:0111077012", "cccd:001088004321"], {"code": "010"}, NOW)
    j.put(["bhxh:0222222222"], {"code": "000"}, NOW)
    j.put(["bhxh:0222222222"], {"code": "000"}, NOW + timedelta(minutes=5))  # replaced
    assert j.intact()
    j.put(["bhxh:0333333333"], {"code": "000"}, NOW - timedelta(hours=30))
    assert j.purge(NOW) == 1 and j.intact()  # purges keep the seal
    conn = sqlite3.connect(tmp_path / "journal.db")  # the "expired" answer, gone by hand
    conn.execute("DELETE FROM entry WHERE at = (SELECT MIN(at) FROM entry)")
    conn.commit()
    conn.close()
    assert not j.intact()
    reopened = Journal(tmp_path, b"k" * 32, retention=timedelta(hours=24))
    assert not reopened.intact()  # a restart does not re-seal what was tampered with


def test_a_truncated_journal_is_set_aside_and_counts_as_lost(tmp_path: Path) -> None:
    j = Journal(tmp_path, b"k" * 32, retention=timedelta(hours=24))
    for i in range(200):
        j.put([f"bhxh:{i:010d}"], {"code": "000", "pad": "x" * 200}, NOW)
    j.close()
    for extra in ("journal.db-wal", "journal.db-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    raw = (tmp_path / "journal.db").read_bytes()
    (tmp_path / "journal.db").write_bytes(raw[: len(raw) // 2])  # a power cut, a bad disk
    again = Journal(tmp_path, b"k" * 32, retention=timedelta(hours=24), now=NOW)
    assert any(p.name.startswith("journal.db.broken-") for p in tmp_path.iterdir())
    assert again.get("bhxh:0000000001", NOW) is None
    assert not again.intact(NOW)                          # rows were lost: review for a day
    assert again.intact(NOW + timedelta(hours=25))        # then the journal stands again
    again.put(["bhxh:0000000001"], {"code": "000"}, NOW)
    assert again.get("bhxh:0000000001", NOW) is not None


def _store(cache: Path, pub: Publisher, facility: str = "") -> OfflineStore:
    return OfflineStore(journal=None, cache_dir=cache, trusted=pub.trusted, reading_key=READING,
                        max_age_days=30, now=lambda: NOW, facility=facility)


def test_a_refused_install_is_not_read_again_at_every_probe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's probe loop calls reload_if_changed every minute: a refused snapshot was
    opened again each time — the whole records file hashed (5 GB at 10 M records), an ERROR
    logged. Another facility's is refused before any hashing; a damaged one is hashed once;
    a new install is picked up."""
    import verify.adapters.cache as adapter

    hashed: list[Path] = []
    real = adapter.file_sha256
    def counted(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(adapter, "file_sha256", counted)
    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "theirs", facility="79012"), cache, pub.trusted,
            terms=DeskTerms("79012"))
    hashed.clear()
    store = _store(cache, pub, "01C54")
    store.load()
    assert store.status == "down" and "for facility 79012" in store.reason
    assert [store.reload_if_changed() for _ in range(3)] == [False] * 3
    assert hashed == []  # refused on its manifest
    install(pub.build(tmp_path / "ours", version=2, facility="01C54"), cache, pub.trusted,
            terms=DeskTerms("01C54"))
    assert store.reload_if_changed() is True and store.status == "ok"
    (cache / "current" / RECORDS).write_bytes(b"x" * (cache / "current" / RECORDS).stat().st_size)
    store.snapshot = None  # as at the next start
    hashed.clear()
    store.load()
    assert store.status == "down" and "content hash" in store.reason
    assert [store.reload_if_changed() for _ in range(3)] == [False] * 3
    assert len(hashed) == 1


def test_a_records_file_changed_after_loading_is_down_not_an_error(tmp_path: Path) -> None:
    """The daemon opens records.db immutable after checking it; changed on disk afterwards
    (a restore over it, a hand), a lookup raised CacheIntegrityError through the verify
    route and health stayed ok. Now the snapshot is dropped, health says why, the answer
    is "not found offline"."""
    from verify.model import Credential, CredentialKind

    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "snap"), cache, pub.trusted)
    store = _store(cache, pub)
    store.load()
    assert store.status == "ok"
    credential = Credential(kind=CredentialKind.MANUAL, card_code="GD4010111077012")
    path = cache / "current" / RECORDS
    with sqlite3.connect(path) as conn:
        sealed = [bytes(r[0]) for r in conn.execute("SELECT sealed FROM rec")]
    conn.close()
    raw = bytearray(path.read_bytes())
    for blob in sealed:
        at = raw.find(blob)
        assert at >= 0
        raw[at + 5] ^= 1
    path.write_bytes(bytes(raw))
    assert store.lookup(credential) is None
    health = store.health()
    assert health["status"] == "down" and "damaged" in health["reason"]


def test_pointing_current_back_or_breaking_the_manifest_lets_no_older_snapshot_in(
        tmp_path: Path) -> None:
    """The installed manifest was the only record of the version: `current` pointed back at
    the kept previous folder rolled the daemon back, and a manifest that no longer parsed
    let any older signed version install. The highest version each scope installed is kept
    beside the snapshots now (and a facility's subset is a scope of its own)."""
    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "v4", version=4), cache, pub.trusted)
    previous = (cache / "current").resolve()
    install(pub.build(tmp_path / "v5", version=5), cache, pub.trusted)
    (cache / "current").unlink()
    (cache / "current").symlink_to(previous.name)  # by hand, or a restored backup
    with pytest.raises(CacheIntegrityError, match="older than version 5 installed before"):
        Snapshot.open(cache, pub.trusted, READING)
    store = _store(cache, pub)
    store.load()
    assert store.status == "down" and "rollback refused" in store.reason
    (cache / "current").unlink()
    (cache / "current").symlink_to(sorted(p.name for p in cache.iterdir()
                                          if p.name.startswith("v5-"))[0])
    (cache / "current" / MANIFEST).write_text("not JSON")  # the manifest broken
    for version in (3, 5):  # older, or the same number with other content
        with pytest.raises(CacheIntegrityError, match="installed before"):
            install(pub.build(tmp_path / f"again{version}", version=version,
                              rows=records()[:2]), cache, pub.trusted)
    install(pub.build(tmp_path / "v6", version=6), cache, pub.trusted)  # newer: fine
    # another scope (a facility's subset) has marks of its own
    install(pub.build(tmp_path / "ours1", version=1, facility="01C54"), cache, pub.trusted,
            terms=DeskTerms("01C54"))
    snap = Snapshot.open(cache, pub.trusted, READING, facility="01C54")
    assert snap is not None and snap.manifest.snapshot_version == 1


def test_two_installs_at_once_take_turns(tmp_path: Path) -> None:
    """The daily timer installing while IT installs by hand: the one that finished first
    deleted the other's staging folder (it crashed), or its folder after the other switched
    ``current`` to it — ``current`` then named nothing, and with no installed manifest any
    older version installed. Now the second waits for the first."""
    import threading

    pub = Publisher()
    cache = tmp_path / "cache"
    install(pub.build(tmp_path / "v4", version=4), cache, pub.trusted)
    v5, v6 = pub.build(tmp_path / "v5", version=5), pub.build(tmp_path / "v6", version=6)
    started, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_copy(fin: IO[bytes], fout: IO[bytes]) -> None:
        started.set()
        go.wait(30)
        fout.write(fin.read())

    def run(src: Path, **kw: object) -> None:
        try:
            install(src, cache, pub.trusted, **kw)  # type: ignore[arg-type]
        except BaseException as e:
            errors.append(e)

    first = threading.Thread(target=run, args=(v5,), kwargs={"copy": slow_copy})
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=run, args=(v6,))
    second.start()
    second.join(3)  # with the lock it waits here; without, it finished and cleaned up
    go.set()
    first.join(30)
    second.join(30)
    assert errors == []
    snap = Snapshot.open(cache, pub.trusted, READING)
    assert snap is not None and snap.manifest.snapshot_version == 6
    assert installed_manifest(cache, pub.trusted) == snap.manifest
