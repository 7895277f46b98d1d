"""The verification path strung together: credential in → registry or offline answer →
decision → record and publish (see ``terminal/flow/__init__.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from terminal.audit import AuditLog
from terminal.events import EventBus
from terminal.feeds import Feeds
from terminal.flow.history import History, HistoryPort
from terminal.flow.intake import Intake
from terminal.flow.lookup import Lookup, Pending, RegistryPort
from terminal.flow.offers import KeyOffers
from terminal.flow.record import AuditWriter, LastResult, Recorder, Shift
from terminal.flow.results import (
    DESK,
    Actor,
    StaffError,
    Verification,
    card_text_json,
    error_json,
)
from terminal.metrics import Metrics
from terminal.offline import OfflineStore
from verify.eligibility import DecisionContext, Source, chip_final
from verify.errors import MissingFieldError, MixedInputError
from verify.model import VN_TZ, Credential
from verify.registry import CardQuery
from verify.tables import Tables

log = logging.getLogger(__name__)

class Verifier:
    """The one entry the API, the chip flow and the scanners call. Holds the steps; each step
    is its own unit (``intake``, ``lookup``, ``recorder``) with its own tests."""

    def __init__(self, *, tables: Tables, facility_code: str, officer_name: str,
                 officer_id: str, registry: RegistryPort | None, key: bytes,
                 bus: EventBus | None = None, now: Callable[[], datetime] | None = None,
                 keep_last_seconds: float = 900.0, offline: OfflineStore | None = None,
                 budget_seconds: float = 3.0, recent_hours: float = 8.0,
                 audit: AuditLog | None = None, desk: str = "",
                 history: HistoryPort | None = None,
                 history_timeout_seconds: float = 10.0,
                 offers: KeyOffers | None = None,
                 subject_key: bytes | None = None) -> None:
        self.tables = tables
        self.facility_code = facility_code
        self.officer_name = officer_name
        self.officer_id = officer_id
        self.bus = bus
        self.feeds = Feeds()  # the HIS feeds (terminal/feeds), added by the app factory
        self.offers = offers  # a CCCD QR's chip keys, for the next card on the reader
        self._now = now or (lambda: datetime.now(UTC))
        self.metrics = Metrics()
        self.intake = Intake(key, self.metrics, self._publish, subject_key=subject_key)
        self.lookup = Lookup(registry=registry, offline=offline, budget_seconds=budget_seconds,
                             metrics=self.metrics, context=self.context,
                             publish=self._publish, keep_flagged_seconds=keep_last_seconds,
                             on_changed=lambda v, was: self.feeds.rechecked(v, was))
        self.shift = Shift(keep_seconds=recent_hours * 3600)
        self.history = History(history, enabled=history is not None,
                               keep_seconds=keep_last_seconds,
                               timeout_seconds=history_timeout_seconds,
                               today=self.today,
                               publish=self._publish)
        self.recorder = Recorder(
            metrics=self.metrics, last=LastResult(keep_last_seconds), shift=self.shift,
            audit=AuditWriter(audit, desk=desk or facility_code, metrics=self.metrics,
                              fingerprint=self.intake.audit_fingerprint,
                              subject=self.intake.subject, default_officer_id=officer_id),
            publish=self._publish)

    # -- credential in ---------------------------------------------------------------------
    def fingerprint(self, raw: str) -> str:
        return self.intake.fingerprint(raw)

    def credential_from_input(self, *, qr: str | None, card_code: str | None,
                              id_number: str | None, full_name: str | None,
                              date_of_birth: str | None) -> Credential:
        """A QR or typed fields, never both (MixedInputError): one rule for the HTTP API and
        ``tiepdon check``."""
        if qr is not None:
            if any((card_code, id_number, full_name, date_of_birth)):
                raise MixedInputError("a QR and typed fields together")
            return self.credential_from_qr(qr)
        return self.credential_from_manual(card_code=card_code, id_number=id_number,
                                           full_name=full_name, date_of_birth=date_of_birth)

    def credential_from_qr(self, text: str) -> Credential:
        return self.intake.from_qr(text)

    def credential_from_manual(self, *, card_code: str | None, id_number: str | None,
                               full_name: str | None, date_of_birth: str | None) -> Credential:
        return self.intake.from_manual(card_code=card_code, id_number=id_number,
                                       full_name=full_name, date_of_birth=date_of_birth)

    def report(self, error: StaffError, fp: str | None) -> None:
        self.intake.report(error, fp)
        self.feeds.failed(error_json(error))

    def card_image(self, credential: Credential, reader: str = "camera") -> dict[str, Any]:
        """A card read from its print (issue 24, "Trust"): a draft, never a decision.

        An MRZ whose check digits held is the chip's access key: it is offered to the next
        card placed on the reader, which then reads with nothing typed. Every other reading
        fills the staff page's manual-entry form, each field marked as read from the card,
        and counts only when staff confirm it (``POST /api/v1/verify``). Either way the page
        hears of it through the ``card_text`` event (returned too), never the HIS feeds."""
        credential = self.intake.from_card_image(credential, reader)
        key = credential.access_key
        offered = key is not None and self.offers is not None
        if offered and self.offers is not None and key is not None:
            self.offers.offer([key])
        log.info("card image read fp=%s kind=%s key_offered=%s", credential.raw_fingerprint,
                 credential.kind.value, offered)
        event = card_text_json(credential, self.tables, key_offered=offered)
        self._publish("card_text", event)
        return event

    def today(self) -> date:
        """The desk's day (Vietnam time)."""
        return self._now().astimezone(VN_TZ).date()

    # -- decision ----------------------------------------------------------------------------
    def context(self) -> DecisionContext:
        return DecisionContext(self.tables, self.facility_code, self._now().astimezone(VN_TZ))

    def query_for(self, credential: Credential, actor: Actor = DESK) -> CardQuery:
        card = credential.card_code or credential.id_number
        if not card or not credential.full_name or credential.date_of_birth is None:
            raise MissingFieldError("registry lookups need the card, the name and the DOB")
        return CardQuery(card, credential.full_name, credential.date_of_birth,
                         actor.officer_name or self.officer_name,
                         actor.officer_id or self.officer_id)

    async def verify(self, credential: Credential, actor: Actor = DESK) -> Verification:
        """Decide for one credential. Input errors raise; registry trouble is a decided
        value. ``actor``: who looked (the registry sees the officer, the audit records it)."""
        try:
            query = self.query_for(credential, actor)
        except MissingFieldError as e:
            self.report(e, credential.raw_fingerprint)
            raise
        if self.offers is not None:  # every intake path: HTTP, serial scanner, camera
            self.offers.offer_from(credential)
        self._publish("credential", credential.to_json())
        started = time.perf_counter()
        looked = await self.lookup.decide(credential, query)
        result = Verification(credential, looked.eligibility, registry_ms=looked.registry_ms)
        self.recorder.record(result, actor, (time.perf_counter() - started) * 1000)
        self.feeds.decided(result)
        self.history.start(credential.raw_fingerprint, query,
                           online=looked.eligibility.source is Source.REGISTRY)
        return result

    def amend(self, previous: Verification, credential: Credential,
              actor: Actor = DESK) -> Verification:
        """Settle a chip decision with the whole read (photo, AA, CA, final PA); record and
        publish it when it changed — always after a provisional answer. Never more favourable
        than the registry's answer with everything the chip proved."""
        final = chip_final(previous.eligibility, credential, self.tables)
        result = Verification(credential, final, previous.registry_ms)
        if previous.eligibility.provisional:
            self.lookup.settle(previous.credential, credential, final)
        if previous.eligibility.provisional or (final.status, final.messages) != (
                previous.eligibility.status, previous.eligibility.messages):
            self.recorder.amend(previous, result, actor)
        return result

    # -- after the answer --------------------------------------------------------------------
    @property
    def pending(self) -> list[Pending]:
        return self.lookup.pending

    async def recheck(self) -> int:
        return await self.lookup.recheck()

    def flagged(self) -> list[dict[str, Any]]:
        return self.lookup.flagged()

    def last(self) -> Verification | None:
        return self.recorder.last.get()

    def drain(self) -> None:
        self.recorder.audit.drain()

    def _publish(self, name: str, data: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(name, data)
