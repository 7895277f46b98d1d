"""The audit for a central log server: each sealed record on one journal line, the facility's
subject key (one patient, one fingerprint at every desk), and ``tiepdon audit verify|find``
over the central copy — a saved ``journalctl -o json`` file, and real journal files written by
``systemd-journal-remote`` and read back by ``journalctl`` when those are installed."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from terminal.audit import AuditLog
from terminal.flow.intake import Intake
from terminal.keys import derive_key
from terminal.metrics import Metrics
from tests.helpers.cli import run
from verify.audit import record_from_message, records_from_journal, verify_records
from verify.credentials import manual_credential

KEY_A, KEY_B, KEY_C = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))
FACILITY_KEY = b"9f2c" * 16  # what `openssl rand -hex 32` writes
PATIENT, OTHER = "001098012345", "079203000111"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def intake(terminal_key: bytes, facility_key: bytes | None) -> Intake:
    return Intake(derive_key(terminal_key, "fingerprint"), Metrics(), lambda *_: None,
                  subject_key=derive_key(facility_key, "subject") if facility_key else None)


def subject(i: Intake, id_number: str) -> str | None:
    credential = manual_credential(card_code=None, id_number=id_number, full_name=None,
                                   date_of_birth=None)
    return i.subject(credential)


def desk_log(folder: Path, desk: str, terminal_key: bytes, patients: list[str],
             caplog: pytest.LogCaptureFixture, facility_key: bytes | None = FACILITY_KEY
             ) -> list[str]:
    """A desk's audit log with one record per patient; returns its journal MESSAGEs as
    journald stores them (the JournalFormatter's ``logger: message``)."""
    i = intake(terminal_key, facility_key)
    log = AuditLog(folder / desk, derive_key(terminal_key, "audit"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tiepdon.audit"):
        for p in patients:
            log.append({"desk": desk, "actor": "desk:default",
                        "officer": i.audit_fingerprint("officer:012345678901"),
                        "kind": "manual", "subject": subject(i, p), "reader": None,
                        "result_code": "000", "status": "eligible", "source": "registry"})
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.name == "tiepdon.audit"]


def export(path: Path, messages: list[tuple[str, str]]) -> Path:
    """``journalctl -o json`` lines: each message with its host, amid other services' lines."""
    lines = []
    for n, (host, message) in enumerate(messages):
        lines.append({"__CURSOR": f"s=x;i={n}", "_HOSTNAME": host, "MESSAGE": message,
                      "SYSLOG_IDENTIFIER": "tiepdon"})
        lines.append({"_HOSTNAME": host, "MESSAGE": "Started session 3 of user root.",
                      "SYSLOG_IDENTIFIER": "systemd-logind"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture
def two_desks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """Desk A looked up the patient once, desk B twice; interleaved as the server got them,
    one of A's lines delivered twice (an uploader restarted)."""
    a = desk_log(tmp_path, "01C54-quay-1", KEY_A, [OTHER, PATIENT, OTHER], caplog)
    b = desk_log(tmp_path, "01C54-quay-2", KEY_B, [PATIENT, OTHER, PATIENT], caplog)
    return [("desk1", a[0]), ("desk2", b[0]), ("desk1", a[1]), ("desk1", a[1]),
            ("desk2", b[1]), ("desk1", a[2]), ("desk2", b[2])]


def key_file(tmp_path: Path, name: str, key: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(key)
    return str(path)


def test_each_sealed_record_is_one_journal_line(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    messages = desk_log(tmp_path, "01C54-quay-1", KEY_A, [PATIENT, OTHER], caplog)
    assert len(messages) == 2
    on_disk = [json.loads(x) for f in sorted((tmp_path / "01C54-quay-1").glob("audit-*"))
               for x in f.read_text().splitlines()]
    carried = [record_from_message(m) for m in messages]
    assert carried == on_disk and carried[0] is not None
    assert {"seq", "prev", "mac", "desk", "actor", "officer", "subject"} <= carried[0].keys()
    assert PATIENT not in "".join(messages)
    assert verify_records(derive_key(KEY_A, "audit"), on_disk).ok


def test_the_facility_key_gives_one_fingerprint_at_every_desk() -> None:
    with_key = {subject(intake(k, FACILITY_KEY), PATIENT) for k in (KEY_A, KEY_B)}
    without = {subject(intake(k, None), PATIENT) for k in (KEY_A, KEY_B)}
    assert len(with_key) == 1 and len(without) == 2


def test_central_verify_and_find_across_desks(tmp_path: Path,
                                              two_desks: list[tuple[str, str]]) -> None:
    journal = str(export(tmp_path / "central.json", two_desks))
    ok = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-1")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["records"] == 3 and report["ok"] and report["macs_checked"] is False
    with_key = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-1",
                   "--key", key_file(tmp_path, "a.key", KEY_A))
    assert with_key.returncode == 0 and json.loads(with_key.stdout)["macs_checked"] is True
    wrong = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-2",
                "--key", key_file(tmp_path, "a.key", KEY_A))
    assert wrong.returncode == 1 and "edited" in wrong.stderr
    nobody = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-9")
    assert nobody.returncode == 1 and "no audit records of desk" in nobody.stderr
    # Who looked at this patient, at any desk: the facility key finds all three lookups.
    facility = key_file(tmp_path, "subject.key", FACILITY_KEY + b"\n")
    found = run("audit", "find", "--journal-file", journal, "--id", PATIENT,
                "--subject-key", facility)
    assert found.returncode == 0, found.stderr
    hits = [json.loads(x) for x in found.stdout.splitlines()]
    assert sorted((h["desk"], h["seq"]) for h in hits) == [
        ("01C54-quay-1", 2), ("01C54-quay-2", 1), ("01C54-quay-2", 3)]
    assert len({h["subject"] for h in hits}) == 1
    one_desk = run("audit", "find", "--journal-file", journal, "--id", PATIENT,
                   "--subject-key", facility, "--desk", "01C54-quay-2")
    assert len(one_desk.stdout.splitlines()) == 2
    # The setting (or credential) is the default key; without any key: one clear line.
    by_setting = run("audit", "find", "--journal-file", journal, "--id", PATIENT,
                     env={"TIEPDON_AUDIT_SUBJECT_KEY_FILE": facility})
    assert len(by_setting.stdout.splitlines()) == 3
    no_key = run("audit", "find", "--journal-file", journal, "--id", PATIENT)
    assert no_key.returncode == 2 and "--subject-key" in no_key.stderr
    missing = run("audit", "verify", "--journal-file", journal)
    assert missing.returncode == 2 and "--desk is required" in missing.stderr


def test_central_copy_with_a_gap_an_edit_or_two_desks_of_one_name(
        tmp_path: Path, two_desks: list[tuple[str, str]],
        caplog: pytest.LogCaptureFixture) -> None:
    a_key = key_file(tmp_path, "a.key", KEY_A)
    gap = [m for m in two_desks if '"seq":2' not in m[1] or "quay-2" in m[1]]
    journal = str(export(tmp_path / "gap.json", gap))
    p = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-1")
    assert p.returncode == 1 and "records 2–2: missing" in p.stderr
    edited = [(h, m.replace('"status":"eligible"', '"status":"not_eligible"', 1)
               if '"seq":3' in m and "quay-1" in m else m) for h, m in two_desks]
    journal = str(export(tmp_path / "edited.json", edited))
    assert run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-1"
               ).returncode == 0  # links and sequence hold: only the MAC tells
    p = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-1",
            "--key", a_key)
    assert p.returncode == 1 and "record 3: edited" in p.stderr
    twin = desk_log(tmp_path / "twin", "01C54-quay-1", KEY_C, [OTHER], caplog)
    journal = str(export(tmp_path / "twin.json", [*two_desks, ("desk3", twin[0])]))
    p = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-quay-1")
    assert p.returncode == 1 and "two desks with one name" in p.stderr


def _export_format(messages: list[tuple[str, str]]) -> str:
    """journald's export format (what systemd-journal-upload sends) for the messages."""
    out = []
    for n, (host, message) in enumerate(messages):
        out.append(f"__REALTIME_TIMESTAMP={1_780_000_000_000_000 + n * 1000}\n"
                   f"__MONOTONIC_TIMESTAMP={1000 + n}\n"
                   f"_BOOT_ID={'0123456789abcdef' * 2}\n_HOSTNAME={host}\n"
                   f"SYSLOG_IDENTIFIER=tiepdon\nMESSAGE={message}\n\n")
    return "".join(out)


@pytest.mark.skipif(not (Path(JOURNAL_REMOTE).exists() and shutil.which("journalctl")),
                    reason="systemd-journal-remote not installed (scripts/setup --test)")
def test_real_journal_files_written_by_journal_remote(tmp_path: Path,
                                                      two_desks: list[tuple[str, str]]) -> None:
    """The central engine's own files: systemd-journal-remote writes them from the export
    stream the desks' uploaders send; `audit verify|find --journal-dir` reads them through
    journalctl."""
    stream = tmp_path / "upload.export"
    stream.write_text(_export_format(two_desks), encoding="utf-8")
    remote = tmp_path / "remote"
    remote.mkdir()
    p = subprocess.run([JOURNAL_REMOTE, f"--output={remote}/remote-desks.journal", str(stream)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    for desk in ("01C54-quay-1", "01C54-quay-2"):
        v = run("audit", "verify", "--journal-dir", str(remote), "--desk", desk)
        assert v.returncode == 0, v.stderr
        assert json.loads(v.stdout)["records"] == 3
    found = run("audit", "find", "--journal-dir", str(remote), "--id", PATIENT,
                "--subject-key", key_file(tmp_path, "subject.key", FACILITY_KEY))
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 3
    nothing = run("audit", "verify", "--journal-dir", str(tmp_path / "nowhere"),
                  "--desk", "x")
    assert nothing.returncode == 2 and "not a folder" in nothing.stderr


def test_journal_parsing_keeps_to_audit_lines() -> None:
    lines: list[Any] = ["", "not json", json.dumps({"MESSAGE": [1, 2, 3]}),
                        json.dumps({"MESSAGE": "audit seq=1 record={broken"}),
                        json.dumps({"MESSAGE": 'audit seq=1 record={"seq": 1}'}),
                        json.dumps(["a list"])]
    assert records_from_journal(lines) == []


def test_a_terminal_key_with_white_space_at_its_ends_is_read_byte_for_byte(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`scripts/install` writes 32 raw random bytes; about one desk in twenty gets a newline,
    a tab or a space at one end. The daemon keys its chain with all 32 bytes, so the auditor's
    ``--key`` must not trim them (a trimmed key read as "not a key" — or, longer, as an
    edited chain). Found by the fleet test in CI: one desk's chain could never be checked."""
    key = b"\n" + bytes(range(40, 70)) + b" "
    messages = desk_log(tmp_path, "01C54-cap-cuu", key, [PATIENT, OTHER], caplog,
                        facility_key=None)  # a desk without the facility's key
    journal = str(export(tmp_path / "central.json", [("desk3", m) for m in messages]))
    key_path = key_file(tmp_path, "terminal.key", key)
    p = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-cap-cuu",
            "--key", key_path)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["macs_checked"] is True and report["records"] == 2
    found = run("audit", "find", "--journal-file", journal, "--id", PATIENT, "--key", key_path)
    assert found.returncode == 0, found.stderr
    assert [json.loads(x)["seq"] for x in found.stdout.splitlines()] == [1]
    short = run("audit", "verify", "--journal-file", journal, "--desk", "01C54-cap-cuu",
                "--key", key_file(tmp_path, "short.key", key[:31]))
    assert short.returncode == 2 and "at least 32" in short.stderr
