"""Each step of the verification path on its own (terminal/flow): intake, lookup, record.

The registry here is a small scripted port (answers, failures, silence); the end-to-end path
over real HTTP is in test_daemon.py and test_offline.py.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from terminal.audit import AuditLog
from terminal.flow.intake import Intake
from terminal.flow.lookup import Lookup
from terminal.flow.record import AuditWriter, LastResult, Recorder, Shift
from terminal.flow.results import DESK, Actor, Verification
from terminal.metrics import Metrics
from tests.helpers.samples import BHYT_NEW_EXAMPLE, NOW
from verify.eligibility import DecisionContext, Source
from verify.errors import QrFormatError, RegistryUnavailable
from verify.model import BirthDate, Credential, CredentialKind
from verify.registry import CardQuery, RegistryAnswer
from verify.tables import Status, Tables

KEY = bytes(32)
CRED = Credential(kind=CredentialKind.MANUAL, card_code="GD4010111077012",
                  full_name="NGUYỄN VĂN A", date_of_birth=BirthDate.of(date(1988, 3, 29)),
                  raw_fingerprint="fp")
QUERY = CardQuery("GD4010111077012", "NGUYỄN VĂN A", BirthDate.of(date(1988, 3, 29)),
                  "Cán bộ", "001099000001")


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.seen.append((name, data))

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]


class Breaker:
    def __init__(self) -> None:
        self.failures = 0

    def failure(self) -> None:
        self.failures += 1


class ScriptedRegistry:
    """Answers each check from its script: an answer, an exception, or ``"hang"``."""

    def __init__(self, *script: RegistryAnswer | Exception | str) -> None:
        self.script = list(script)
        self.queries: list[CardQuery] = []
        self._breaker = Breaker()

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    async def check(self, query: CardQuery) -> RegistryAnswer:
        self.queries.append(query)
        step = self.script.pop(0)
        if step == "hang":
            await asyncio.sleep(3600)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, RegistryAnswer)
        return step


def valid_answer() -> RegistryAnswer:
    return RegistryAnswer(code="000", card_code="GD4010111077012", full_name="NGUYỄN VĂN A",
                          date_of_birth=BirthDate.of(date(1988, 3, 29)),
                          registered_facility="01050", valid_from=date(2026, 1, 1),
                          valid_to=date(2026, 12, 31), area_code=None)


def lookup(tables: Tables, registry: ScriptedRegistry | None, events: Events,
           budget: float = 3.0) -> Lookup:
    return Lookup(registry=registry, offline=None, budget_seconds=budget, metrics=Metrics(),
                  context=lambda: DecisionContext(tables, "01050", NOW), publish=events,
                  keep_flagged_seconds=900)


# -- intake ----------------------------------------------------------------------------------
def test_intake_stamps_the_keyed_fingerprint() -> None:
    events = Events()
    intake = Intake(KEY, Metrics(), events)
    credential = intake.from_qr(BHYT_NEW_EXAMPLE)
    assert credential.raw_fingerprint == intake.fingerprint(BHYT_NEW_EXAMPLE)
    assert credential.raw_fingerprint != Intake(b"\x01" * 32, Metrics(), events).fingerprint(
        BHYT_NEW_EXAMPLE)
    assert events.seen == []


def test_intake_reports_refused_input_without_its_text() -> None:
    events, metrics = Events(), Metrics()
    intake = Intake(KEY, metrics, events)
    with pytest.raises(QrFormatError):
        intake.from_qr("not a card|secret name")
    assert events.names() == ["error"]
    assert events.seen[0][1]["code"] == "qr_format"
    assert "secret" not in str(events.seen)
    assert metrics.input_errors["qr_format"] == 1


# -- lookup ----------------------------------------------------------------------------------
def test_lookup_asks_the_registry_with_the_query_it_was_given(tables: Tables) -> None:
    registry, events = ScriptedRegistry(valid_answer()), Events()
    looked = asyncio.run(lookup(tables, registry, events).decide(CRED, QUERY))
    assert looked.eligibility.status is Status.ELIGIBLE
    assert looked.eligibility.source is Source.REGISTRY
    assert registry.queries == [QUERY] and looked.registry_ms is not None


def test_lookup_registry_failure_is_a_decided_value(tables: Tables) -> None:
    registry, events = ScriptedRegistry(RegistryUnavailable("refused")), Events()
    looked = asyncio.run(lookup(tables, registry, events).decide(CRED, QUERY))
    assert looked.eligibility.status is Status.NEEDS_REVIEW
    assert looked.eligibility.source is Source.NONE
    assert events.names() == ["device"]


def test_lookup_silent_registry_counts_against_the_breaker(tables: Tables) -> None:
    registry, events = ScriptedRegistry("hang"), Events()

    async def run() -> Any:
        return await lookup(tables, registry, events, budget=0.05).decide(CRED, QUERY)

    looked = asyncio.run(run())
    assert looked.eligibility.status is Status.NEEDS_REVIEW
    assert registry.breaker.failures == 1


def test_lookup_without_a_registry_is_offline(tables: Tables) -> None:
    looked = asyncio.run(lookup(tables, None, Events()).decide(CRED, QUERY))
    assert looked.eligibility.source is Source.NONE and looked.registry_ms is None


# -- record ----------------------------------------------------------------------------------
def decided(tables: Tables) -> Verification:
    looked = asyncio.run(lookup(tables, ScriptedRegistry(valid_answer()), Events()).decide(
        CRED, QUERY))
    return Verification(CRED, looked.eligibility, looked.registry_ms)


def test_record_keeps_publishes_and_audits_the_actor(tables: Tables, tmp_path: Path) -> None:
    events, metrics = Events(), Metrics()
    intake = Intake(KEY, metrics, events)
    log = AuditLog(tmp_path / "audit", KEY)
    writer = AuditWriter(log, desk="01050", metrics=metrics, fingerprint=intake.fingerprint,
                         subject=intake.subject, default_officer_id="001099000001")
    recorder = Recorder(metrics=metrics, last=LastResult(900), shift=Shift(3600), audit=writer,
                        publish=events)
    result = decided(tables)
    recorder.record(result, Actor("staff", "lan", "Cán bộ Lan", "001199999999"), 1.0)
    recorder.record(result, DESK, 1.0)
    writer.drain()
    assert recorder.last.get() is result
    assert len(recorder.shift.recent()) == 2
    assert events.names() == ["eligibility", "eligibility"]
    assert metrics.verifications["eligible", "registry", "000"] == 2
    records = log.export()
    assert [r["TIEPDON_ACTOR"] for r in records] == ["staff:lan", "desk:default"]
    assert records[0]["TIEPDON_OFFICER"] == intake.fingerprint("officer:001199999999")
    assert records[1]["TIEPDON_OFFICER"] == intake.fingerprint("officer:001099000001")
    assert log.verify().records == 2


def test_privacy_windows_purge(tables: Tables) -> None:
    last, shift = LastResult(-1.0), Shift(0)  # a window already over
    result = decided(tables)
    last.set(result)
    shift.add(result)
    assert last.get() is None
    assert shift.recent() == [] and shift.stats()["total"] == 0


def test_a_chip_read_answered_offline_is_rechecked_as_it_settled(tables: Tables) -> None:
    """Registry down while a chip is read: the identity-time answer comes from the journal,
    provisional, and is kept for a re-check. The re-check compared against — and decided
    with — that provisional answer ("needs_review", the chip "being read" hours later). Now
    the settled read is what the re-check starts from."""
    from dataclasses import replace

    from readers.emrtd.pa import PassiveAuth, PaStatus
    from terminal.offline import OfflineHit
    from verify.eligibility import chip_final
    from verify.evidence import Check, ChipDetails, ChipEvidence, Completeness, MrzSummary

    class Stored:
        def lookup(self, credential: Credential) -> OfflineHit:
            return OfflineHit(valid_answer(), NOW, "offline_journal", {"time": "08:00"})

        def remember(self, *args: object) -> None:
            return None

    def chip(completeness: Completeness) -> Credential:
        evidence = ChipEvidence(ChipDetails(MrzSummary("088004321", "880329", "280329", "M",
                                                       "VNM"), "pace"),
                                PassiveAuth(PaStatus.AUTHENTIC, None),
                                active_auth=Check.PASSED, completeness=completeness)
        return replace(CRED, kind=CredentialKind.CHIP, chip=evidence)

    revoked = replace(valid_answer(), valid_to=date(2026, 3, 1))
    registry, events = ScriptedRegistry(RegistryUnavailable("down"), revoked), Events()
    look = Lookup(registry=registry, offline=Stored(), budget_seconds=3, metrics=Metrics(),  # type: ignore[arg-type]
                  context=lambda: DecisionContext(tables, "01050", NOW), publish=events,
                  keep_flagged_seconds=900)
    identity = chip(Completeness.IDENTITY)
    first = asyncio.run(look.decide(identity, QUERY)).eligibility
    assert first.provisional and first.source is Source.CACHE
    whole = chip(Completeness.COMPLETE)
    settled = chip_final(first, whole, tables)
    assert settled.status is Status.ELIGIBLE
    look.settle(identity, whole, settled)
    assert asyncio.run(look.recheck()) == 1
    (flagged,) = look.flagged()
    assert flagged["recheck"]["previous_status"] == "eligible"
    assert flagged["status"] == "not_eligible" and "provisional" not in flagged
    assert "chip_read_in_progress" not in [m["code"] for m in flagged["messages"]]
