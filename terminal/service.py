"""The verification service: credential in, eligibility out, events published.

Loads the data tables and the terminal's fingerprint key, turns QR text or typed numbers into
a :class:`Credential`, asks the registry within its timeout, decides, and keeps the latest
result for the page for a limited time only. Logs name a payload by its keyed fingerprint.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from terminal.audit import AuditLog
from terminal.events import EventBus
from terminal.metrics import Metrics
from terminal.offline import OfflineStore
from verify.eligibility import (
    OFFLINE_KEEP_CODES,
    DecisionContext,
    Eligibility,
    decide,
    notice_message,
    offline_decide,
    undecided,
)
from verify.errors import (
    IdNumberError,
    InputFormatError,
    MissingFieldError,
    RegistryError,
    TableError,
)
from verify.fingerprint import KEY_BYTES, fingerprint
from verify.ids import CardCodeKind, parse_card_code
from verify.model import (
    VN_TZ,
    Credential,
    CredentialKind,
    is_digits,
    normalize_text,
    parse_birth_date,
)
from verify.qr import MAX_PAYLOAD_CHARS, parse_qr
from verify.registry import CardQuery, RegistryAnswer
from verify.tables import TABLE_FILES, Tables, parse_tables

log = logging.getLogger(__name__)


class BreakerPort(Protocol):
    def failure(self) -> None: ...


class RegistryPort(Protocol):
    @property
    def breaker(self) -> BreakerPort: ...

    async def check(self, query: CardQuery) -> RegistryAnswer: ...


def load_tables(directory: Path) -> Tables:
    texts: dict[str, str] = {}
    for name in TABLE_FILES:
        try:
            texts[name] = (directory / name).read_text(encoding="utf-8")
        except OSError as e:
            raise TableError(f"data table {directory / name} unreadable: "
                             f"{type(e).__name__}") from None
    return parse_tables(texts)


def ephemeral_key() -> bytes:
    """For one-shot CLI commands that cannot reach the data folder."""
    return secrets.token_bytes(KEY_BYTES)


class Shift:
    """The shift's recent patients (for staff) and counts (for the dashboard), in memory,
    purged after ``keep_seconds``. Counts carry no personal data."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep = keep_seconds
        self.items: deque[tuple[float, datetime, dict[str, Any]]] = deque()

    def add(self, result: Verification) -> None:
        if self.keep <= 0:
            return
        e, c = result.eligibility, result.credential
        self.items.append((time.monotonic(), e.checked_at, {
            "checked_at": e.checked_at.isoformat(), "status": e.status.value,
            "source": e.source.value, "registry_code": e.registry_code,
            "full_name": (e.person.full_name if e.person else None) or c.full_name,
            "card_code": e.card_code, "kind": c.kind.value, "reader": c.reader,
        }))
        self._purge()

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


MAX_PENDING = 500  # offline answers awaiting a re-check (a day at a busy desk)


@dataclass(frozen=True, slots=True)
class Pending:
    credential: Credential
    eligibility: Eligibility
    at: float


@dataclass(frozen=True, slots=True)
class Verification:
    credential: Credential
    eligibility: Eligibility
    registry_ms: float | None = None  # time spent waiting for the registry (Server-Timing)

    def to_json(self) -> dict[str, Any]:
        return {**self.eligibility.to_json(), "credential": self.credential.to_json()}


class StaffError(Protocol):
    """Any of our errors: a code for machines and a sentence per language for staff."""

    code: str
    vi: str
    en: str


def error_json(error: StaffError, fp: str | None = None) -> dict[str, Any]:
    """How an input or registry error reaches the page and the API: what to do, no data."""
    out: dict[str, Any] = {"code": error.code, "vi": error.vi, "en": error.en}
    if fp:
        out["raw_fingerprint"] = fp
    return out


class Verifier:
    def __init__(
        self,
        *,
        tables: Tables,
        facility_code: str,
        officer_name: str,
        officer_id: str,
        registry: RegistryPort | None,
        key: bytes,
        bus: EventBus | None = None,
        now: Callable[[], datetime] | None = None,
        keep_last_seconds: float = 900.0,
        offline: OfflineStore | None = None,
        budget_seconds: float = 3.0,
        recent_hours: float = 8.0,
        audit: AuditLog | None = None,
        desk: str = "",
    ) -> None:
        self.audit = audit
        self.desk = desk
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self.offline = offline
        self.budget_seconds = budget_seconds
        self.pending: list[Pending] = []
        self.rechecks: list[tuple[float, dict[str, Any]]] = []
        self.tables = tables
        self.facility_code = facility_code
        self.officer_name = officer_name
        self.officer_id = officer_id
        self.registry = registry
        self.bus = bus
        self._key = key
        self._now = now or (lambda: datetime.now(UTC))
        self._keep_last = keep_last_seconds
        self._last: tuple[float, Verification] | None = None
        self.metrics = Metrics()
        self.shift = Shift(keep_seconds=recent_hours * 3600)

    def fingerprint(self, raw: str) -> str:
        return fingerprint(self._key, raw)

    # -- credentials -------------------------------------------------------------------
    def credential_from_qr(self, text: str) -> Credential:
        fp = self.fingerprint(text[:MAX_PAYLOAD_CHARS * 2])
        try:
            credential = parse_qr(text)
        except InputFormatError as e:
            self.report(e, fp)
            raise
        return replace(credential, raw_fingerprint=fp)

    def credential_from_manual(self, *, card_code: str | None, id_number: str | None,
                               full_name: str | None, date_of_birth: str | None) -> Credential:
        raw = "|".join(x or "" for x in (card_code, id_number, full_name, date_of_birth))
        fp = self.fingerprint(raw)
        try:
            credential = self._manual(card_code, id_number, full_name, date_of_birth)
        except InputFormatError as e:
            self.report(e, fp)
            raise
        return replace(credential, raw_fingerprint=fp)

    @staticmethod
    def _manual(card_code: str | None, id_number: str | None, full_name: str | None,
                date_of_birth: str | None) -> Credential:
        code = (card_code or "").strip()
        ident = (id_number or "").strip()
        if not code and not ident:
            raise MissingFieldError("card code or ID number required")
        id12: str | None = None
        if ident:
            if not (len(ident) == 12 and is_digits(ident)):
                raise IdNumberError("ID number is not 12 digits")
            id12 = ident
        card: str | None = None
        if code:
            parsed = parse_card_code(code)
            if parsed.kind is CardCodeKind.CCCD:
                id12 = id12 or parsed.code
            else:
                card = parsed.code
        name = normalize_text(full_name or "") or None
        dob = parse_birth_date(date_of_birth) if date_of_birth and date_of_birth.strip() else None
        return Credential(kind=CredentialKind.MANUAL, id_number=id12, card_code=card,
                          full_name=name, date_of_birth=dob)

    # -- verification ------------------------------------------------------------------
    def context(self) -> DecisionContext:
        return DecisionContext(self.tables, self.facility_code, self._now().astimezone(VN_TZ))

    def query_for(self, credential: Credential,
                  officer: tuple[str, str] | None = None) -> CardQuery:
        card = credential.card_code or credential.id_number
        if not card or not credential.full_name or credential.date_of_birth is None:
            raise MissingFieldError("registry lookups need the card, the name and the DOB")
        name, ident = officer or (self.officer_name, self.officer_id)
        return CardQuery(card, credential.full_name, credential.date_of_birth, name, ident)

    async def verify(self, credential: Credential,
                     officer: tuple[str, str] | None = None) -> Verification:
        """Decide for one credential. Input errors raise; registry trouble is a decided value.

        ``officer``: the logged-in staff member (name, CCCD) the lookup is made for; default
        the configured officer."""
        try:
            query = self.query_for(credential, officer)
        except MissingFieldError as e:
            self.report(e, credential.raw_fingerprint)
            raise
        self._publish("credential", credential.to_json())
        started = time.perf_counter()
        ctx = self.context()
        answer, failure, registry_ms = None, "offline", None
        if self.registry is not None:
            task = asyncio.ensure_future(self.registry.check(query))
            try:
                answer = await asyncio.wait_for(asyncio.shield(task), self.budget_seconds)
            except TimeoutError:
                failure = "registry_slow"
                # Too slow for the desk counts against the breaker now; a late success
                # clears it again, so only a gateway that stays silent trips it.
                self.registry.breaker.failure()
                task.add_done_callback(lambda t: self._late_answer(t, credential))
            except RegistryError as e:
                log.warning("registry failed fp=%s error=%s", credential.raw_fingerprint,
                            type(e).__name__)
                failure = e.code if e.code in self.tables.notices else "registry_unavailable"
                self._publish("device", {"device": "registry", "status": "degraded",
                                         "reason": e.code})
            registry_ms = (time.perf_counter() - started) * 1000
            self.metrics.observe_registry(registry_ms / 1000)
        if answer is not None:
            eligibility = decide(answer, credential, ctx)
            if self.offline is not None and answer.code in OFFLINE_KEEP_CODES:
                self.offline.remember(credential, answer, ctx.checked_at)
        else:
            eligibility = self._offline(credential, ctx, failure)
        self.metrics.verifications[eligibility.status.value, eligibility.source.value,
                                   eligibility.registry_code or "none"] += 1
        total_ms = (time.perf_counter() - started) * 1000
        result = Verification(credential, eligibility, registry_ms=registry_ms)
        log.info("verified kind=%s fp=%s status=%s code=%s source=%s ms=%.1f",
                 credential.kind.value, credential.raw_fingerprint, eligibility.status.value,
                 eligibility.registry_code, eligibility.source.value, total_ms)
        self._last = (time.monotonic(), result)
        self.shift.add(result)
        self._audit(result)
        self._publish("eligibility", result.to_json())
        return result

    def _offline(self, credential: Credential, ctx: DecisionContext,
                 failure: str) -> Eligibility:
        """Journal, then snapshot; remembered for a re-check when the registry is back."""
        hit = self.offline.lookup(credential) if self.offline is not None else None
        if hit is None:
            return undecided(credential, ctx, failure if failure != "registry_slow"
                             else "registry_unavailable")
        eligibility = offline_decide(hit.answer, credential, ctx, data_as_of=hit.data_as_of,
                                     notice=hit.notice, slow=failure == "registry_slow",
                                     expired_days=hit.expired_days,
                                     from_snapshot=hit.from_snapshot, **hit.values)
        if self.registry is not None:
            self.pending.append(Pending(credential, eligibility, time.monotonic()))
            del self.pending[:-MAX_PENDING]
        return eligibility

    def _late_answer(self, task: asyncio.Future[RegistryAnswer], credential: Credential) -> None:
        """The registry answered after the budget: keep it, and re-check what was said."""
        if task.cancelled() or task.exception() is not None:
            return
        answer = task.result()
        ctx = self.context()
        if self.offline is not None and answer.code in OFFLINE_KEEP_CODES:
            self.offline.remember(credential, answer, ctx.checked_at)
        for item in [p for p in self.pending if p.credential is credential]:
            self.pending.remove(item)
            self._compare(item, decide(answer, credential, ctx))

    async def recheck(self) -> int:
        """Ask the registry again about answers given offline; flag changed outcomes.
        Returns how many were checked. Stops at the first registry failure."""
        checked = 0
        while self.pending and self.registry is not None:
            item = self.pending[0]
            try:
                answer = await asyncio.wait_for(
                    self.registry.check(self.query_for(item.credential)), self.budget_seconds)
            except (RegistryError, TimeoutError):
                break
            self.pending.pop(0)
            self._compare(item, decide(answer, item.credential, self.context()))
            checked += 1
        return checked

    def _compare(self, item: Pending, fresh: Eligibility) -> None:
        before, after = item.eligibility, fresh
        if (before.status, before.benefit_level, before.valid_to) == (
                after.status, after.benefit_level, after.valid_to):
            return
        message = notice_message(self.tables, "recheck_changed", before=before.status.value,
                                 after=after.status.value)
        flagged = replace(after, messages=(message, *after.messages))
        data = Verification(item.credential, flagged).to_json()
        data["recheck"] = {"changed": True, "previous_status": before.status.value,
                           "previous_source": before.source.value,
                           "previous_checked_at": before.checked_at.isoformat()}
        self.rechecks.append((time.monotonic(), data))
        log.warning("re-check changed the outcome fp=%s %s -> %s",
                    item.credential.raw_fingerprint, before.status.value, after.status.value)
        self._publish("eligibility", data)

    def flagged(self) -> list[dict[str, Any]]:
        """Changed outcomes found by re-checks, until the privacy window purges them."""
        cutoff = time.monotonic() - self._keep_last
        self.rechecks = [(t, d) for t, d in self.rechecks if t >= cutoff]
        return [d for _, d in self.rechecks]

    def subject(self, credential: Credential) -> str | None:
        """The keyed fingerprint an auditor searches by (``tiepdon audit find``)."""
        ident = credential.id_number or credential.card_code
        return self.fingerprint("subject:" + ident) if ident else None

    def _audit(self, result: Verification) -> None:
        """Queue the audit record: written (and fsynced) in order by one writer thread, so
        the answer never waits on the disk. ``drain`` waits for the queue (shutdown, tests)."""
        if self.audit is None:
            return
        self._writer.submit(self._write_audit, result)

    def drain(self) -> None:
        self._writer.submit(lambda: None).result()

    def _write_audit(self, result: Verification) -> None:
        assert self.audit is not None  # checked before queueing
        c, e = result.credential, result.eligibility
        try:
            self.audit.append({
                "desk": self.desk or self.facility_code,
                "officer": self.fingerprint("officer:" + self.officer_id)
                if self.officer_id else None,
                "kind": c.kind.value, "subject": self.subject(c), "reader": c.reader,
                "result_code": e.registry_code, "status": e.status.value,
                "source": e.source.value})
        except OSError as err:  # a full disk must not stop the desk; say so loudly
            log.error("audit append failed: %s", type(err).__name__)
            self.metrics.input_errors["audit_write_failed"] += 1

    def last(self) -> Verification | None:
        """The latest result, until the privacy window purges it."""
        if self._last is None:
            return None
        if time.monotonic() - self._last[0] > self._keep_last:
            self._last = None
            return None
        return self._last[1]

    def report(self, error: StaffError, fp: str | None) -> None:
        log.warning("input rejected fp=%s error=%s", fp, error.code)
        self.metrics.input_errors[error.code] += 1
        self._publish("error", error_json(error, fp))

    def _publish(self, name: str, data: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(name, data)
