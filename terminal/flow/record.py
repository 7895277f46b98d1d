"""Record and publish: the latest result for the page (privacy window), the shift list, the
metrics, the audit record (written in order by its own thread after the answer) and the
``eligibility`` event. Only counts and keyed fingerprints outlive the privacy windows."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from terminal.audit import AuditLog
from terminal.flow.results import Actor, Verification
from terminal.metrics import Metrics
from verify.eligibility import Eligibility
from verify.model import VN_TZ

log = logging.getLogger(__name__)


class Shift:
    """The shift's recent patients (for staff) and counts (for the dashboard), in memory,
    purged after ``keep_seconds``. Counts carry no personal data."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep = keep_seconds
        self.items: deque[tuple[float, datetime, dict[str, Any]]] = deque()

    def add(self, result: Verification) -> None:
        if self.keep <= 0:
            return
        self.items.append((time.monotonic(), result.eligibility.checked_at, self._row(result)))
        self._purge()

    def replace(self, previous: Verification, result: Verification) -> None:
        """The same lookup with its final decision (a chip read revisited)."""
        for i in range(len(self.items) - 1, -1, -1):
            t, at, row = self.items[i]
            if at == previous.eligibility.checked_at and row["kind"] == (
                    previous.credential.kind.value):
                self.items[i] = (t, at, self._row(result))
                return

    @staticmethod
    def _row(result: Verification) -> dict[str, Any]:
        e, c = result.eligibility, result.credential
        return {
            "checked_at": e.checked_at.isoformat(), "status": e.status.value,
            "source": e.source.value, "registry_code": e.registry_code,
            "full_name": (e.person.full_name if e.person else None) or c.full_name,
            "card_code": e.card_code, "kind": c.kind.value, "reader": c.reader,
        }

    def _purge(self) -> None:
        cutoff = time.monotonic() - self.keep
        while self.items and self.items[0][0] < cutoff:  # oldest first: O(1) per call
            self.items.popleft()

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        self._purge()
        return [d for _, _, d in list(reversed(self.items))[:limit]]

    def stats(self) -> dict[str, Any]:
        """Patients per hour (VN time), online vs offline, result-code mix: counts only."""
        self._purge()
        per_hour: dict[str, int] = {}
        sources: dict[str, int] = {}
        codes: dict[str, int] = {}
        statuses: dict[str, int] = {}
        for _, at, d in self.items:
            hour = at.astimezone(VN_TZ).strftime("%H:00")
            per_hour[hour] = per_hour.get(hour, 0) + 1
            sources[d["source"]] = sources.get(d["source"], 0) + 1
            code = d["registry_code"] or "—"
            codes[code] = codes.get(code, 0) + 1
            statuses[d["status"]] = statuses.get(d["status"], 0) + 1
        return {"total": len(self.items), "per_hour": dict(sorted(per_hour.items())),
                "sources": sources, "registry_codes": dict(sorted(codes.items())),
                "statuses": statuses}


class LastResult:
    """The latest result for ``GET /api/v1/last``, until the privacy window purges it."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep = keep_seconds
        self._last: tuple[float, Verification] | None = None

    def set(self, result: Verification) -> None:
        self._last = (time.monotonic(), result)

    def get(self) -> Verification | None:
        if self._last is None:
            return None
        if time.monotonic() - self._last[0] > self.keep:
            self._last = None
            return None
        return self._last[1]


class AuditWriter:
    """Queues audit records: written (and fsynced) in order by one writer thread, so the
    answer never waits on the disk. ``drain`` waits for the queue (shutdown, tests)."""

    def __init__(self, audit: AuditLog | None, *, desk: str, metrics: Metrics,
                 fingerprint: Callable[[str], str], subject: Callable[[Any], str | None],
                 default_officer_id: str) -> None:
        self.audit = audit
        self.desk = desk
        self.metrics = metrics
        self._fingerprint = fingerprint
        self._subject = subject
        self._default_officer_id = default_officer_id
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")

    def record(self, result: Verification, actor: Actor) -> None:
        if self.audit is not None:
            self._writer.submit(self._write, result, actor)

    def drain(self) -> None:
        self._writer.submit(lambda: None).result()

    def _write(self, result: Verification, actor: Actor) -> None:
        assert self.audit is not None  # checked before queueing
        c, e = result.credential, result.eligibility
        officer_id = actor.officer_id or self._default_officer_id
        try:
            self.audit.append({
                "desk": self.desk,
                "actor": actor.label,
                "officer": self._fingerprint("officer:" + officer_id) if officer_id else None,
                "kind": c.kind.value, "subject": self._subject(c), "reader": c.reader,
                "result_code": e.registry_code, "status": e.status.value,
                "source": e.source.value})
        except OSError as err:  # a full disk must not stop the desk; say so loudly
            log.error("audit append failed: %s", type(err).__name__)
            self.metrics.input_errors["audit_write_failed"] += 1


class Recorder:
    """Everything that happens once a decision is made, in this order: metrics, log line,
    privacy-window copy, shift list, audit, event."""

    def __init__(self, *, metrics: Metrics, last: LastResult, shift: Shift,
                 audit: AuditWriter, publish: Callable[[str, dict[str, Any]], None]) -> None:
        self.metrics = metrics
        self.last = last
        self.shift = shift
        self.audit = audit
        self._publish = publish

    def record(self, result: Verification, actor: Actor, total_ms: float) -> None:
        c, e = result.credential, result.eligibility
        if not e.provisional:  # a chip read's decision is counted once, when it settles
            self._count(e)
        log.info("verified kind=%s fp=%s status=%s code=%s source=%s ms=%.1f",
                 c.kind.value, c.raw_fingerprint, e.status.value, e.registry_code,
                 e.source.value, total_ms)
        self.last.set(result)
        self.shift.add(result)
        self.audit.record(result, actor)
        self._publish("eligibility", result.to_json())

    def _count(self, e: Eligibility) -> None:
        self.metrics.verifications[e.status.value, e.source.value, e.registry_code or "none"] += 1

    def amend(self, previous: Verification, result: Verification, actor: Actor) -> None:
        """A decision settled (a provisional chip answer) or revisited (the whole read
        failed a check the identity passed): everything that showed the first answer shows
        the final one, and the audit gets a record with the final status."""
        e = result.eligibility
        if previous.eligibility.provisional:
            self._count(e)
            log.info("decision settled fp=%s status=%s", result.credential.raw_fingerprint,
                     e.status.value)
        else:
            self.metrics.amended[previous.eligibility.status.value, e.status.value] += 1
            log.warning("decision amended fp=%s %s -> %s", result.credential.raw_fingerprint,
                        previous.eligibility.status.value, e.status.value)
        if self.last.get() is previous:
            self.last.set(result)
        self.shift.replace(previous, result)
        self.audit.record(result, actor)
        self._publish("eligibility", {**result.to_json(), "amended": True})
