"""The audit trail's records and their chain (pure): who looked up whom, never with the
identifier itself.

Each record holds when, the desk, who looked (``actor``: ``staff:<login>``, ``his:<token name>``
or ``desk:default``), the officer (keyed fingerprint of the CCCD sent to the gateway), the
credential kind, the
keyed fingerprint of the identifier looked up, the result code, status and source. Records are
chained: ``mac_n = HMAC(key, mac_{n-1} || canonical(record_n))`` under a key derived from the
terminal's own secret, so an edited, removed or reordered record breaks the chain, and the
chain cannot be recomputed by someone who only has the files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "at", "desk", "officer", "kind", "subject", "reader", "result_code",
          "status", "source")
# Added later: part of the chain when present, so records written before them still verify.
LATER_FIELDS = ("actor",)


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record.get(k) for k in FIELDS}
    out.update({k: record[k] for k in LATER_FIELDS if k in record})
    return out


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(_fields(record), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


def chain_mac(key: bytes, prev: str, record: dict[str, Any]) -> str:
    return hmac.new(key, prev.encode() + canonical(record), hashlib.sha256).hexdigest()


def seal(key: bytes, prev: str, record: dict[str, Any]) -> dict[str, Any]:
    out = _fields(record)
    out["prev"] = prev
    out["mac"] = chain_mac(key, prev, out)
    return out


@dataclass(frozen=True, slots=True)
class ChainReport:
    records: int
    first_seq: int | None
    last_seq: int | None
    last_mac: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(key: bytes, lines: Iterable[str], *, start_prev: str | None = None,
                 start_seq: int | None = None) -> ChainReport:
    """Check every record and the links between them.

    ``start_prev``/``start_seq``: where the chain is expected to begin (the previous file's
    last MAC and next sequence number); None accepts the first record's own link — after a
    retention purge the oldest surviving file starts mid-chain.
    """
    problems: list[str] = []
    prev, seq = start_prev, start_seq
    count = 0
    first = last = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            mac, link, rseq = rec["mac"], rec["prev"], int(rec["seq"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"line {number}: not an audit record")
            prev = None
            continue
        count += 1
        first = rseq if first is None else first
        last = rseq
        if not hmac.compare_digest(chain_mac(key, link, rec), mac):
            problems.append(f"record {rseq}: edited (its MAC does not match)")
        if prev is not None and not hmac.compare_digest(link, prev):
            problems.append(f"record {rseq}: does not follow the record before it "
                            "(removed or reordered records)")
        if seq is not None and rseq != seq:
            problems.append(f"record {rseq}: expected sequence {seq} (removed, inserted or "
                            "reordered records)")
        prev, seq = mac, rseq + 1
    return ChainReport(count, first, last, prev or (start_prev or GENESIS), tuple(problems))


# -- the central copy ---------------------------------------------------------------------
# Each sealed record also goes to the journal as one line, ``audit seq=N record={...}``
# (terminal/audit.py); systemd-journal-upload carries it to the facility's log server. These
# read it back from ``journalctl -o json`` output, one JSON object a line.
RECORD_MARK = " record="


def journal_line(sealed: dict[str, Any]) -> str:
    """The record as the journal carries it: compact JSON, keys sorted."""
    return json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_from_message(message: str) -> dict[str, Any] | None:
    """The sealed record inside a journal MESSAGE, or None when the line carries none."""
    start = message.find("audit seq=")
    mark = message.find(RECORD_MARK, start) if start >= 0 else -1
    if mark < 0:
        return None
    try:
        record = json.loads(message[mark + len(RECORD_MARK):])
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not {"seq", "prev", "mac"} <= record.keys():
        return None
    return record


def records_from_journal(lines: Iterable[str], desk: str | None = None
                         ) -> list[dict[str, Any]]:
    """The audit records in ``journalctl -o json`` output (of ``desk`` only, when given),
    without duplicates (an uploader that restarts may send an entry twice), by sequence."""
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        message = entry.get("MESSAGE") if isinstance(entry, dict) else None
        if isinstance(message, list):  # journald's form for a MESSAGE that is not UTF-8
            continue
        record = record_from_message(message) if isinstance(message, str) else None
        if record is None or (desk is not None and record.get("desk") != desk):
            continue
        try:
            seen.setdefault((int(record["seq"]), str(record["mac"])), record)
        except (ValueError, TypeError):
            continue
    return [seen[k] for k in sorted(seen)]


def verify_records(key: bytes | None, records: list[dict[str, Any]]) -> ChainReport:
    """One desk's chain from the central copy, oldest first. With ``key`` (the desk's audit
    key) every MAC is checked; without it the links and the sequence only: a record removed,
    inserted, reordered or missing from the journal still shows, an edited one does not. Two
    records with one sequence number are two chains under one desk name."""
    problems: list[str] = []
    by_seq: dict[int, int] = {}
    for r in records:
        by_seq[int(r["seq"])] = by_seq.get(int(r["seq"]), 0) + 1
    for seq, n in sorted(by_seq.items()):
        if n > 1:
            problems.append(f"record {seq}: {n} different records with this number (two desks "
                            "with one name, or a desk whose audit log was reset)")
    prev: str | None = None
    expected: int | None = None
    for r in records:
        seq, mac, link = int(r["seq"]), str(r["mac"]), str(r["prev"])
        if key is not None and not hmac.compare_digest(chain_mac(key, link, r), mac):
            problems.append(f"record {seq}: edited (its MAC does not match)")
        if expected is not None and seq > expected:
            problems.append(f"records {expected}–{seq - 1}: missing (removed, or never "
                            "shipped)")
        elif prev is not None and seq == expected and not hmac.compare_digest(link, prev):
            problems.append(f"record {seq}: does not follow the record before it")
        prev, expected = mac, seq + 1
    first = int(records[0]["seq"]) if records else None
    last = int(records[-1]["seq"]) if records else None
    return ChainReport(len(records), first, last, prev or GENESIS, tuple(problems))
