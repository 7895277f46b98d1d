"""The audit trail: every verification appended, chained, and each kind of tampering caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from terminal.audit import AuditLog
from terminal.server import BackgroundServer
from tests.helpers.cli import run
from tests.helpers.samples import BHYT_NEW_EXAMPLE, CCCD_EXAMPLE
from verify.audit import GENESIS, chain_mac, seal

KEY = b"a" * 32
T0 = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)


def filled(tmp_path: Path, n: int = 5, days: int = 1) -> AuditLog:
    log = AuditLog(tmp_path / "audit", KEY)
    for i in range(n):
        log.append({"desk": "01C54", "kind": "cccd_qr", "subject": f"fp{i}", "status": "eligible",
                    "source": "registry", "result_code": "000"},
                   now=T0 + timedelta(days=(i * days) // n, minutes=i))
    return log


def lines(log: AuditLog) -> tuple[Path, list[str]]:
    path = log.files()[0]
    return path, path.read_text().splitlines()


def test_a_clean_chain_verifies_across_rotated_files(tmp_path: Path) -> None:
    log = filled(tmp_path, n=9, days=3)
    assert len(log.files()) == 3
    report = log.verify()
    assert report.ok and report.records == 9 and (report.first_seq, report.last_seq) == (1, 9)
    reopened = AuditLog(tmp_path / "audit", KEY)  # a restart continues the chain
    reopened.append({"kind": "manual", "status": "needs_review", "source": "none"},
                    now=T0 + timedelta(days=3))
    assert reopened.verify().ok and reopened.verify().records == 10


def test_edited_record_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    path, rows = lines(log)
    rec = json.loads(rows[2])
    rec["status"] = "not_eligible"
    rows[2] = json.dumps(rec, ensure_ascii=False)
    path.write_text("\n".join(rows) + "\n")
    problems = log.verify().problems
    assert any("record 3: edited" in p for p in problems)


def test_removed_record_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    path, rows = lines(log)
    del rows[1]
    path.write_text("\n".join(rows) + "\n")
    assert any("record 3" in p and "removed" in p for p in log.verify().problems)


def test_records_cut_from_the_end_are_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    path, rows = lines(log)
    path.write_text("\n".join(rows[:-2]) + "\n")
    assert any("removed from the end" in p for p in log.verify().problems)
    (tmp_path / "audit" / "head.json").unlink()
    assert any("head is missing" in p for p in log.verify().problems)


def test_reordered_records_are_detected(tmp_path: Path) -> None:
    log = filled(tmp_path)
    path, rows = lines(log)
    rows[1], rows[2] = rows[2], rows[1]
    path.write_text("\n".join(rows) + "\n")
    assert not log.verify().ok


def test_a_forged_record_without_the_key_is_detected(tmp_path: Path) -> None:
    from verify.audit import seal

    log = filled(tmp_path)
    path, rows = lines(log)
    last = json.loads(rows[-1])
    forged = seal(b"b" * 32, last["mac"], {**last, "seq": last["seq"] + 1})
    path.write_text("\n".join([*rows, json.dumps(forged)]) + "\n")
    assert any("edited" in p for p in log.verify().problems)


def test_retention_purges_old_files_and_the_rest_still_verifies(tmp_path: Path) -> None:
    log = filled(tmp_path, n=9, days=3)
    log.retention = timedelta(days=1)
    assert log.purge(now=T0 + timedelta(days=2, hours=1)) >= 1
    report = log.verify()
    assert report.ok and report.first_seq and report.first_seq > 1


def test_daemon_audits_every_verification(daemon: BackgroundServer, tmp_path: Path) -> None:
    for body in ({"qr": CCCD_EXAMPLE}, {"qr": BHYT_NEW_EXAMPLE}, {"qr": CCCD_EXAMPLE}):
        httpx.post(f"{daemon.url}/api/v1/verify", json=body, timeout=10)
    httpx.post(f"{daemon.url}/api/v1/verify", json={"qr": "junk"}, timeout=10)  # not a lookup
    env = {"TIEPDON_DATA_DIR": str(tmp_path / "data")}
    app: Any = daemon.server.config.app
    app.state.services.verifier.drain()  # records are written behind the answers
    p = run("audit", "verify", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["records"] == 3
    found = run("audit", "find", "--id", "001098012345", env=env)
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 2
    # typed as staff type it, the same person (the command searched the text as typed)
    for typed in (("--id", " 001098012345 "), ("--card", "0010-9801-2345")):
        again = run("audit", "find", *typed, env=env)
        assert again.stdout == found.stdout, (typed, again.stderr)
    short = run("audit", "find", "--id", "00109801234", env=env)  # 11 digits: said, exit 2
    assert short.returncode == 2 and len(short.stderr.strip().splitlines()) == 1
    nobody = run("audit", "find", "--id", "001099999999", env=env)
    assert nobody.returncode == 1 and "no audit records" in nobody.stderr
    exported = run("audit", "export", env=env).stdout
    first = json.loads(exported.splitlines()[0])
    assert first["SYSLOG_IDENTIFIER"] == "tiepdon" and first["TIEPDON_STATUS"] == "eligible"
    raw = "".join(p.read_text() for p in (tmp_path / "data" / "audit").iterdir())
    for private in ("001098012345", "Nguyễn", "NGUYỄN", "GD4010111077012", "0111077012"):
        assert private not in raw
    # tamper: the command says so and exits 1
    # the day's records, not the sealed head beside them (a folder's order is the filesystem's)
    audit_file = next((tmp_path / "data" / "audit").glob("audit-*.jsonl"))
    rows = audit_file.read_text().splitlines()
    audit_file.write_text("\n".join(rows[:1] + rows[2:]) + "\n")
    bad = run("audit", "verify", env=env)
    assert bad.returncode == 1 and "tampered" in bad.stderr


def test_audit_needs_the_terminal_key(tmp_path: Path) -> None:
    p = run("audit", "verify", env={"TIEPDON_DATA_DIR": str(tmp_path)})
    assert p.returncode == 2 and "terminal key" in p.stderr


def test_records_written_before_the_actor_field_still_verify() -> None:
    """``actor`` joined the chain later: a record without it keeps its MAC."""
    key = bytes(32)
    old = {"seq": 1, "at": "2026-01-01T00:00:00+07:00", "desk": "01050", "officer": None,
           "kind": "manual", "subject": "s", "reader": None, "result_code": "000",
           "status": "eligible", "source": "registry"}
    sealed = seal(key, GENESIS, old)
    assert "actor" not in sealed
    assert sealed["mac"] == chain_mac(key, GENESIS, old)
    with_actor = seal(key, GENESIS, {**old, "actor": "staff:lan"})
    assert with_actor["actor"] == "staff:lan" and with_actor["mac"] != sealed["mac"]
