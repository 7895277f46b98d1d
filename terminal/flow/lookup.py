"""Registry or offline answer: the gateway within the desk's budget; on a miss, the journal of
recent online answers, then the signed snapshot. Answers given offline wait for a re-check when
the registry is back; a changed outcome is flagged (``GET /api/v1/rechecks``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from terminal.flow.results import Verification
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
from verify.errors import RegistryError
from verify.model import Credential
from verify.registry import CardQuery, RegistryAnswer

log = logging.getLogger(__name__)
MAX_PENDING = 500  # offline answers awaiting a re-check (a day at a busy desk)


class BreakerPort(Protocol):
    def failure(self) -> None: ...


class RegistryPort(Protocol):
    @property
    def breaker(self) -> BreakerPort: ...

    async def check(self, query: CardQuery) -> RegistryAnswer: ...


@dataclass(frozen=True, slots=True)
class Pending:
    credential: Credential
    query: CardQuery
    eligibility: Eligibility
    at: float


@dataclass(frozen=True, slots=True)
class Looked:
    eligibility: Eligibility
    registry_ms: float | None


class Lookup:
    def __init__(self, *, registry: RegistryPort | None, offline: OfflineStore | None,
                 budget_seconds: float, metrics: Metrics,
                 context: Callable[[], DecisionContext],
                 publish: Callable[[str, dict[str, Any]], None],
                 keep_flagged_seconds: float,
                 on_changed: Callable[[Verification, dict[str, Any]], None] | None = None
                 ) -> None:
        self.registry = registry
        self._on_changed = on_changed  # the HIS feeds hear of a changed outcome too
        self.offline = offline
        self.budget_seconds = budget_seconds
        self.metrics = metrics
        self.context = context
        self._publish = publish
        self._keep_flagged = keep_flagged_seconds
        self.pending: list[Pending] = []
        self.rechecks: list[tuple[float, dict[str, Any]]] = []

    async def decide(self, credential: Credential, query: CardQuery) -> Looked:
        """Input errors were refused before; registry trouble is a decided value here."""
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
                failure = (e.code if e.code in ctx.tables.notices
                           else "registry_unavailable")
                self._publish("device", {"device": "registry", "status": "degraded",
                                         "reason": e.code})
            registry_ms = (time.perf_counter() - started) * 1000
            self.metrics.observe_registry(registry_ms / 1000)
        if answer is not None:
            if self.offline is not None and answer.code in OFFLINE_KEEP_CODES:
                self.offline.remember(credential, answer, ctx.checked_at)
            return Looked(decide(answer, credential, ctx), registry_ms)
        return Looked(self._offline(credential, query, ctx, failure), registry_ms)

    def _offline(self, credential: Credential, query: CardQuery, ctx: DecisionContext,
                 failure: str) -> Eligibility:
        """Journal, then snapshot; remembered for a re-check when the registry is back."""
        hit = self.offline.lookup(credential) if self.offline is not None else None
        if hit is None:
            return undecided(credential, ctx, failure if failure != "registry_slow"
                             else "registry_unavailable")
        eligibility = offline_decide(hit.answer, credential, ctx, data_as_of=hit.data_as_of,
                                     notice=hit.notice, slow=failure == "registry_slow",
                                     expired_days=hit.expired_days,
                                     from_snapshot=hit.from_snapshot,
                                     journal_tampered=hit.journal_tampered, **hit.values)
        if self.registry is not None:
            self.pending.append(Pending(credential, query, eligibility, time.monotonic()))
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
        for item in [p for p in self.pending if _same_read(p.credential, credential)]:
            self.pending.remove(item)
            self._compare(item, decide(answer, item.credential, ctx))

    def settle(self, provisional: Credential, credential: Credential,
               eligibility: Eligibility) -> None:
        """A chip read that was answered offline at identity time has ended: its re-check
        compares and decides with the whole read, not the provisional answer."""
        self.pending = [replace(p, credential=credential, eligibility=eligibility)
                        if p.credential is provisional else p for p in self.pending]

    async def recheck(self) -> int:
        """Ask the registry again about answers given offline; flag changed outcomes.
        Returns how many were checked. Stops at the first registry failure."""
        checked = 0
        while self.pending and self.registry is not None:
            item = self.pending[0]
            try:
                answer = await asyncio.wait_for(self.registry.check(item.query),
                                                self.budget_seconds)
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
        message = notice_message(self.context().tables, "recheck_changed",
                                 before=before.status.value, after=after.status.value)
        flagged = replace(after, messages=(message, *after.messages))
        data = Verification(item.credential, flagged).to_json()
        data["recheck"] = {"changed": True, "previous_status": before.status.value,
                           "previous_source": before.source.value,
                           "previous_checked_at": before.checked_at.isoformat()}
        self.rechecks.append((time.monotonic(), data))
        log.warning("re-check changed the outcome fp=%s %s -> %s",
                    item.credential.raw_fingerprint, before.status.value, after.status.value)
        self._publish("eligibility", data)
        if self._on_changed is not None:
            self._on_changed(Verification(item.credential, flagged), data["recheck"])

    def flagged(self) -> list[dict[str, Any]]:
        """Changed outcomes found by re-checks, until the privacy window purges them."""
        cutoff = time.monotonic() - self._keep_flagged
        self.rechecks = [(t, d) for t, d in self.rechecks if t >= cutoff]
        return [d for _, d in self.rechecks]


def _same_read(pending: Credential, asked: Credential) -> bool:
    """The pending answer is the one this registry request was for — the same credential,
    or the settled form of the same chip read (same keyed fingerprint)."""
    return pending is asked or (pending.raw_fingerprint is not None
                                and pending.raw_fingerprint == asked.raw_fingerprint)
