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
