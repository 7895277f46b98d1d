"""The append-only audit log on disk: one JSON line per verification in
``<data>/audit/audit-YYYYMMDD.jsonl``, chained across files (verify/audit.py), rotated daily,
purged after the retention; each sealed record also goes to the log (journald) as one line,
``audit seq=N record={...}``, for the facility's central log server; the daemon checks its
own chain on a timer (:meth:`AuditLog.self_check`, ``tiepdon_audit_chain_ok``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from verify.audit import GENESIS, ChainReport, journal_line, seal, verify_chain

log = logging.getLogger("tiepdon.audit")
HEAD = "head.json"


class AuditLog:
    def __init__(self, folder: Path, key: bytes, *, retention_days: float = 365) -> None:
        self.folder = folder
        self.key = key
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prev, self._seq = self._tail()
        self.checked: ChainReport | None = None  # the last self-check
        self.checked_at: datetime | None = None

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest record (0: none yet)."""
        return self._seq - 1

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("audit-*.jsonl"))

    def _tail(self) -> tuple[str, int]:
        for path in reversed(self.files()):
            lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
            if lines:
                last = json.loads(lines[-1])
                return str(last["mac"]), int(last["seq"]) + 1
        return GENESIS, 1

    def append(self, record: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        with self._lock:
            sealed = seal(self.key, self._prev, {**record, "seq": self._seq,
                                                 "at": now.isoformat()})
            path = self.folder / f"audit-{now.astimezone(UTC):%Y%m%d}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, json.dumps(sealed, ensure_ascii=False).encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            self._prev, self._seq = sealed["mac"], self._seq + 1
            self._write_head(sealed["seq"], sealed["mac"])
        # The sealed record itself (fingerprints only): the central copy can be checked and
        # searched (tiepdon audit verify|find --journal-dir).
        log.info("audit seq=%s record=%s", sealed["seq"], journal_line(sealed),
                 extra={"TIEPDON_AUDIT_SEQ": sealed["seq"], "TIEPDON_SUBJECT": sealed["subject"],
                        "TIEPDON_STATUS": sealed["status"]})
        return sealed

    def _head_mac(self, seq: int, mac: str) -> str:
        return hmac.new(self.key, f"head|{seq}|{mac}".encode(), hashlib.sha256).hexdigest()

    def _write_head(self, seq: int, mac: str) -> None:
        """The sealed head: the last record's number and MAC, so that records cut from the
        end of the log are noticed too (a chain alone cannot tell)."""
        tmp = self.folder / ".head.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"seq": seq, "mac": mac, "head_mac": self._head_mac(seq, mac)}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.folder / HEAD)

    def _check_head(self, last_seq: int | None, last_mac: str) -> list[str]:
        path = self.folder / HEAD
        if not path.exists():
            return [] if last_seq is None else ["the sealed head is missing (log tampered)"]
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
            seq, mac = int(head["seq"]), str(head["mac"])
            ok = hmac.compare_digest(self._head_mac(seq, mac), str(head["head_mac"]))
        except (ValueError, KeyError, TypeError):
            return ["the sealed head is unreadable"]
        if not ok:
            return ["the sealed head was edited"]
        if last_seq is None or seq > last_seq or (seq == last_seq and mac != last_mac):
            return [f"records after {last_seq} were removed from the end (head says {seq})"]
        return []

    def purge(self, now: datetime | None = None) -> int:
        cutoff = ((now or datetime.now(UTC)) - self.retention).strftime("%Y%m%d")
        removed = 0
        for path in self.files():
            if path.stem.split("-", 1)[1] < cutoff:
                path.unlink()
                removed += 1
        return removed

    def verify(self) -> ChainReport:
        """The whole chain across the files, oldest first."""
        problems: list[str] = []
        prev: str | None = None
        seq: int | None = None
        total = 0
        first = last = None
        for index, path in enumerate(self.files()):
            report = verify_chain(self.key, path.read_text(encoding="utf-8").splitlines(),
                                  start_prev=prev if index else None,
                                  start_seq=seq if index else None)
            problems += [f"{path.name}: {p}" for p in report.problems]
            total += report.records
            first = report.first_seq if first is None else first
            last = report.last_seq if report.last_seq is not None else last
            prev = report.last_mac
            seq = (report.last_seq + 1) if report.last_seq is not None else seq
        problems += self._check_head(last, prev or GENESIS)
        return ChainReport(total, first, last, prev or GENESIS, tuple(problems))

    def self_check(self, now: datetime | None = None) -> ChainReport:
        """The whole chain checked while no record is being written (the daemon's timer);
        a broken chain is logged as an error each time it is found."""
        try:
            with self._lock:
                report = self.verify()
        except (OSError, ValueError, KeyError, TypeError) as e:  # unreadable or not JSON
            report = ChainReport(0, None, None, GENESIS, (f"unreadable: {type(e).__name__}",))
        was_ok = self.checked is None or self.checked.ok
        self.checked, self.checked_at = report, now or datetime.now(UTC)
        if not report.ok:
            log.error("audit chain broken: %s (%d problems)", report.problems[0],
                      len(report.problems))
        elif not was_ok:
            log.warning("audit chain intact again up to seq=%s", report.last_seq)
        return report

    def export(self) -> list[dict[str, Any]]:
        """Records as journald/syslog-style fields for the hospital's log system."""
        out = []
        for path in self.files():
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                rec = json.loads(line)
                out.append({"SYSLOG_IDENTIFIER": "tiepdon", "PRIORITY": 6,
                            "MESSAGE": f"verification {rec['status']} ({rec['source']})",
                            **{f"TIEPDON_{k.upper()}": v for k, v in rec.items()}})
        return out
