"""The eligibility decision: a registry answer + what was presented → an ``Eligibility`` value.

Pure and deterministic: the day, the facility and the tables are passed in. The decision is a
value even when it is negative; "could not decide" is a ``needs_review`` value with
``source="none"`` built by :func:`undecided`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from readers.emrtd.pa import PaStatus
from verify.errors import CardCodeError
from verify.evidence import Completeness
from verify.ids import (
    CardCodeKind,
    cross_check_id,
    normalize_facility,
    parse_card_code,
    parse_citizen_id,
)
from verify.model import BirthDate, Credential, Sex, dmy, same_name
from verify.registry import CODE_OK, NEW_CARD_CODES, RegistryAnswer
from verify.tables import Severity, Status, Tables

EXPIRING_SOON_DAYS = 30
# Codes whose answer describes a card (the registry sends its data with them).
CARD_DATA_CODES = frozenset({"000", "003", "004", "010"})
_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.OK: 2, Severity.INFO: 3}
_STATUS_SEVERITY = {Status.ELIGIBLE: Severity.OK, Status.NOT_ELIGIBLE: Severity.ERROR,
                    Status.NEEDS_REVIEW: Severity.WARNING}


class Source(StrEnum):
    REGISTRY = "registry"
    CACHE = "cache"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Message:
    code: str
    severity: Severity
    vi: str
    en: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity.value, "vi": self.vi, "en": self.en}


@dataclass(frozen=True, slots=True)
class NewCard:
    card_code: str | None
    valid_from: date | None
    valid_to: date | None
    registered_facility: str | None
    registered_facility_name: str | None


@dataclass(frozen=True, slots=True)
class Person:
    full_name: str | None
    date_of_birth: BirthDate | None
    sex: Sex | None


@dataclass(frozen=True, slots=True)
class DecisionContext:
    tables: Tables
    facility_code: str
    checked_at: datetime  # aware; its date in VN_TZ is the visit day

    @property
    def today(self) -> date:
        return self.checked_at.date()


@dataclass(frozen=True, slots=True)
class Eligibility:
    status: Status
    source: Source
    checked_at: datetime
    data_as_of: datetime | None
    messages: tuple[Message, ...]
    registry_code: str | None = None
    card_code: str | None = None
    object_code: str | None = None
    benefit_level: int | None = None
    benefit_percent: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    days_left: int | None = None
    registered_facility: str | None = None
    is_registered_here: bool | None = None
    area_code: str | None = None
    five_years_date: date | None = None
    five_years_reached: bool | None = None
    new_card: NewCard | None = None
    person: Person | None = None
    # A chip read still going on (Active Authentication, the photo): this answer is given
    # early for the identity and is ``needs_review`` until the read ends; the status the
    # registry's answer had before that, for :func:`chip_final` to start from. None: final.
    awaiting_chip: Status | None = None

    @property
    def provisional(self) -> bool:
        return self.awaiting_chip is not None

    def to_json(self) -> dict[str, Any]:
        def iso(d: date | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "status": self.status.value,
            "source": self.source.value,
            "registry_code": self.registry_code,
            "card_code": self.card_code,
            "object_code": self.object_code,
            "benefit_level": self.benefit_level,
            "benefit_percent": self.benefit_percent,
            "valid_from": iso(self.valid_from),
            "valid_to": iso(self.valid_to),
            "days_left": self.days_left,
            "registered_facility": self.registered_facility,
            "is_registered_here": self.is_registered_here,
            "area_code": self.area_code,
            "five_years_date": iso(self.five_years_date),
            "five_years_reached": self.five_years_reached,
            "new_card": None if self.new_card is None else {
                "card_code": self.new_card.card_code,
                "valid_from": iso(self.new_card.valid_from),
                "valid_to": iso(self.new_card.valid_to),
                "registered_facility": self.new_card.registered_facility,
                "registered_facility_name": self.new_card.registered_facility_name,
            },
            "person": None if self.person is None else {
                "full_name": self.person.full_name,
                "date_of_birth": self.person.date_of_birth.iso()
                if self.person.date_of_birth else None,
                "sex": self.person.sex.value if self.person.sex else None,
            },
            "messages": [m.to_json() for m in self.messages],
            "checked_at": self.checked_at.isoformat(),
            "data_as_of": self.data_as_of.isoformat() if self.data_as_of else None,
            **({"provisional": True} if self.provisional else {}),
        }


class _Notes:
    """Collects staff messages from the tables, filling their placeholders."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.items: list[Message] = []

    def add(self, name: str, **values: object) -> None:
        notice = self.tables.notices[name]
        text = {k: str(v) for k, v in values.items()}
        self.items.append(Message(name, notice.severity, notice.vi.format(**text),
                                  notice.en.format(**text)))

    def has(self, name: str) -> bool:
        return any(m.code == name for m in self.items)

    def ordered(self, first: Message | None) -> tuple[Message, ...]:
        rest = sorted(self.items, key=lambda m: _SEVERITY_RANK[m.severity])
        return tuple([first, *rest] if first else rest)


def notice_message(tables: Tables, name: str, **values: object) -> Message:
    notes = _Notes(tables)
    notes.add(name, **values)
    return notes.items[0]


def _registry_message(code: str, tables: Tables, notes: _Notes) -> tuple[Status, Message | None]:
    entry = tables.registry_codes.get(code)
    if entry is None:
        # python-fido2 style: an undocumented code is kept and shown, never mapped to a guess.
        notes.add("unknown_registry_code", code=code)
        return Status.NEEDS_REVIEW, None
    return entry.status, Message(f"registry_{code}", _STATUS_SEVERITY[entry.status],
                                 entry.vi, entry.en)


CHIP_NOTICES = frozenset({"chip_authentic", "chip_unanchored", "chip_pa_failed",
                          "chip_copy_suspected", "chip_read_incomplete",
                          "chip_check_not_done", "chip_read_in_progress"})


def _chip_notice(credential: Credential, notes: _Notes) -> bool:
    """The chip's authentication outcomes as notices; True when any of them failed.

    Fail closed (ICAO 9303-11 §6.1, §6.2): passive authentication proves the data was signed,
    not that this chip is the one it was signed for — a failed Active or Chip Authentication
    means the chip may be a copy; a check the chip offers that this terminal could not run
    proves nothing either way and needs review too (without calling the card a copy)."""
    evidence = credential.chip
    if evidence is None:
        return False
    status = evidence.passive_auth.status
    name = {PaStatus.AUTHENTIC: "chip_authentic", PaStatus.UNANCHORED: "chip_unanchored"}.get(
        status, "chip_pa_failed")
    failed = name == "chip_pa_failed"
    if evidence.failed_checks:
        failed = True
        notes.add("chip_copy_suspected", checks=", ".join(evidence.failed_checks))
    if evidence.unverified_checks and evidence.completeness is not Completeness.INCOMPLETE:
        failed = True
        notes.add("chip_check_not_done", checks=", ".join(evidence.unverified_checks),
                  reason=evidence.chip_auth_reason or "")
    if evidence.completeness is Completeness.INCOMPLETE:
        failed = True
        notes.add("chip_read_incomplete")
    if evidence.completeness is Completeness.IDENTITY:
        # Active Authentication and the rest of the read are still to come: nothing the chip
        # has not yet proved is shown as proved (fail closed) — a provisional needs_review.
        failed = True
        notes.add("chip_read_in_progress")
    if not (failed and name != "chip_pa_failed"):
        notes.add(name, reason=evidence.passive_auth.reason or "")
    return failed


def chip_final(eligibility: Eligibility, credential: Credential,
               tables: Tables) -> Eligibility:
    """The decision made at identity time, revisited with the whole chip read (photo, AA, CA,
    the final passive authentication): the chip notices are replaced, and a failure turns an
    ``eligible`` into ``needs_review``. Never more favourable than the registry's answer: a
    provisional answer (:attr:`Eligibility.awaiting_chip`) starts again from that, so a
    read that proves everything ends ``eligible``, one that does not stays under review."""
    notes = _Notes(tables)
    failed = _chip_notice(credential, notes)
    kept = [m for m in eligibility.messages if m.code not in CHIP_NOTICES]
    status = eligibility.awaiting_chip or eligibility.status
    if failed and status is Status.ELIGIBLE:
        status = Status.NEEDS_REVIEW
    # The registry's own answer stays first (as ``decide`` put it); the rest by severity.
    first = kept[0] if kept and kept[0].code.removeprefix("registry_").isdigit() else None
    rest = sorted([*notes.items, *(kept[1:] if first else kept)],
                  key=lambda m: _SEVERITY_RANK[m.severity])
    return replace(eligibility, status=status, awaiting_chip=None,
                   messages=tuple([first, *rest] if first else rest))


def _cross_checks(credential: Credential, answer: RegistryAnswer | None, ctx: DecisionContext,
                  notes: _Notes) -> None:
    if answer is not None:
        if credential.full_name and answer.full_name and not same_name(
                credential.full_name, answer.full_name):
            notes.add("name_mismatch")
        if credential.date_of_birth and answer.date_of_birth and not (
                credential.date_of_birth.matches(answer.date_of_birth)):
            notes.add("dob_mismatch")
    if credential.id_number:
        findings = cross_check_id(
            parse_citizen_id(credential.id_number),
            date_of_birth=credential.date_of_birth,
            sex=credential.sex,
            province_names=ctx.tables.provinces,
        )
        for finding in findings:
            notes.add(finding)


def _benefit(card_code: str | None, benefit_digit: int | None, ctx: DecisionContext,
             notes: _Notes) -> tuple[str | None, int | None, int | None]:
    """(object code, level, percent) in force today; notes say why when unknown."""
    try:
        card = parse_card_code(card_code) if card_code else None
    except CardCodeError:
        card = None
    if card is None or card.kind is not CardCodeKind.CLASSIC or card.object_code is None:
        notes.add("benefit_no_object")
        return None, None, None
    applied = ctx.tables.rules.level_for(card.object_code, ctx.today)
    if applied is None:
        notes.add("benefit_unknown_object", object=card.object_code)
        return card.object_code, None, None
    level = applied.benefit.level
    printed = card.benefit_digit or benefit_digit
    if printed is not None and printed != level:
        notes.add("benefit_digit_differs", level=level, printed=printed,
                  since=dmy(applied.rule.effective_from))
    rules = ctx.tables.rules
    salary = rules.base_salary_on(ctx.today)
    if level in rules.small_visit_levels and salary and rules.small_visit_percent:
        amount = salary * rules.small_visit_percent // 100
        notes.add("small_visit", amount=f"{amount:,}".replace(",", "."))
    return card.object_code, level, applied.benefit.percent


def _validity(status: Status, code: str, valid_from: date | None, valid_to: date | None,
              today: date, notes: _Notes) -> Status:
    """The card's validity window against the day of the visit."""
    days_left = (valid_to - today).days if valid_to else None
    if status is Status.ELIGIBLE:
        if valid_from and valid_from > today:
            notes.add("card_not_yet_valid", date=dmy(valid_from))
            return Status.NOT_ELIGIBLE
        if valid_to and valid_to < today:
            notes.add("card_expired", date=dmy(valid_to))
            return Status.NOT_ELIGIBLE
        if valid_to and days_left is not None and days_left <= EXPIRING_SOON_DAYS:
            notes.add("expiring_soon", days=days_left, date=dmy(valid_to))
    elif code == "010" and valid_to:
        notes.add("card_expired", date=dmy(valid_to))
    return status


def decide(answer: RegistryAnswer, credential: Credential, ctx: DecisionContext, *,
           source: Source = Source.REGISTRY, data_as_of: datetime | None = None) -> Eligibility:
    tables, today = ctx.tables, ctx.today
    notes = _Notes(tables)
    status, first = _registry_message(answer.code, tables, notes)

    new_card = None
    card_code = answer.card_code or credential.card_code
    valid_from, valid_to = answer.valid_from, answer.valid_to
    facility = answer.registered_facility
    if answer.code in NEW_CARD_CODES:
        new_card = NewCard(answer.new_card_code, answer.new_valid_from, answer.new_valid_to,
                           answer.new_registered_facility, answer.new_registered_facility_name)
        notes.add("new_card", card=answer.new_card_code or "?")
        if answer.code == "003":  # the old card is dead: the new card's data is what counts
            card_code = answer.new_card_code or card_code
            valid_from = answer.new_valid_from or valid_from
            valid_to = answer.new_valid_to or valid_to
            facility = answer.new_registered_facility or facility

    days_left = (valid_to - today).days if valid_to else None
    status = _validity(status, answer.code, valid_from, valid_to, today, notes)

    object_code = level = percent = None
    has_card_data = answer.code in CARD_DATA_CODES or answer.valid_to is not None
    if has_card_data:
        object_code, level, percent = _benefit(card_code, credential.benefit_digit, ctx, notes)
    if status is Status.ELIGIBLE and level is None:
        status = Status.NEEDS_REVIEW  # QĐ 1351/QĐ-BHXH: an unknown object code is never guessed
    if status is Status.ELIGIBLE and (valid_to is None
                                      or not (answer.card_code or answer.new_card_code)):
        # "000" alone is not a valid card: without the registry's card code and validity the
        # benefit would rest on what the patient typed and the dates on nothing.
        status = Status.NEEDS_REVIEW
        notes.add("registry_answer_incomplete")

    here: bool | None = None
    if facility:
        here = normalize_facility(facility) == normalize_facility(ctx.facility_code)
        if status is not Status.NOT_ELIGIBLE:
            notes.add("registered_here" if here else "not_registered_here", facility=facility)
    if answer.area_code:
        notes.add("area_code", area=answer.area_code)
    five = answer.five_years_date
    if five:
        notes.add("five_years_reached" if five <= today else "five_years_pending", date=dmy(five))
    if answer.note and answer.code != CODE_OK:
        notes.add("registry_note", note=answer.note)
    _cross_checks(credential, answer, ctx, notes)
    registry_status = status
    if _chip_notice(credential, notes) and status is Status.ELIGIBLE:
        status = Status.NEEDS_REVIEW  # fail closed: an unverifiable chip is not an identity

    person = Person(answer.full_name or credential.full_name,
                    answer.date_of_birth or credential.date_of_birth,
                    answer.sex or credential.sex)
    return Eligibility(
        status=status, source=source, checked_at=ctx.checked_at,
        data_as_of=data_as_of or ctx.checked_at, messages=notes.ordered(first),
        registry_code=answer.code, card_code=card_code, object_code=object_code,
        benefit_level=level, benefit_percent=percent, valid_from=valid_from, valid_to=valid_to,
        days_left=days_left, registered_facility=facility, is_registered_here=here,
        area_code=answer.area_code, five_years_date=five,
        five_years_reached=None if five is None else five <= today,
        new_card=new_card, person=person, awaiting_chip=_awaiting(credential, registry_status),
    )


def _awaiting(credential: Credential, status: Status) -> Status | None:
    """The registry's status while a chip read is still going on (see ``awaiting_chip``)."""
    chip = credential.chip
    return status if chip is not None and chip.completeness is Completeness.IDENTITY else None


def undecided(credential: Credential, ctx: DecisionContext, reason: str) -> Eligibility:
    """No source could answer: ``needs_review`` with ``source="none"`` and what to do.

    ``reason`` names a notice (``registry_unavailable``, ``registry_protocol``, ``offline``…).
    """
    notes = _Notes(ctx.tables)
    notes.add(reason)
    _cross_checks(credential, None, ctx, notes)
    _chip_notice(credential, notes)
    here = None
    if credential.registered_facility:
        here = normalize_facility(credential.registered_facility) == normalize_facility(
            ctx.facility_code)
    return Eligibility(
        status=Status.NEEDS_REVIEW, source=Source.NONE, checked_at=ctx.checked_at,
        awaiting_chip=_awaiting(credential, Status.NEEDS_REVIEW),
        data_as_of=None, messages=notes.ordered(None), card_code=credential.card_code,
        valid_from=credential.valid_from, valid_to=credential.valid_to,
        registered_facility=credential.registered_facility, is_registered_here=here,
        five_years_date=credential.five_years_date,
        person=Person(credential.full_name, credential.date_of_birth, credential.sex),
    )


OFFLINE_KEEP_CODES = frozenset({"000", "001", "002", "003", "004", "010", "050", "110", "120",
                                "121", "122", "123", "124", "130"})


def offline_decide(answer: RegistryAnswer, credential: Credential, ctx: DecisionContext, *,
                   data_as_of: datetime, notice: str, slow: bool = False,
                   expired_days: float | None = None, from_snapshot: bool = False,
                   journal_tampered: bool = False, **values: object) -> Eligibility:
    """A decision from stored data (journal or snapshot), labelled as such.

    Stricter than online: a name or DOB that differs from the stored data, or a snapshot past
    its expiry (a freeze attack shows as age), makes the answer ``needs_review``.
    """
    e = decide(answer, credential, ctx, source=Source.CACHE, data_as_of=data_as_of)
    notes = _Notes(ctx.tables)
    notes.add(notice, **values)
    if slow:
        notes.add("registry_slow")
    review_all = False  # every status becomes needs_review
    review_eligible = False  # an eligible one does
    if expired_days is not None:
        notes.add("snapshot_expired", days=f"{expired_days:.0f}")
        review_all = True
    if journal_tampered:  # a newer, negative answer may have been deleted from the journal
        notes.add("offline_journal_tampered")
        review_eligible = True
    if {"name_mismatch", "dob_mismatch"} & {m.code for m in e.messages}:
        notes.add("offline_mismatch")
        review_eligible = True

    def stricter(status: Status) -> Status:
        if review_all or (review_eligible and status is Status.ELIGIBLE):
            return Status.NEEDS_REVIEW
        return status

    first = notes.ordered(None)
    messages = e.messages
    if from_snapshot:  # the "000" was ours, not the gateway's: say nothing in its name
        messages = tuple(m for m in messages if not m.code.startswith("registry_"))
        e = replace(e, registry_code=None)
    # the status a chip read settles from is held to the same rules (else it would settle
    # back to the stored answer's "eligible")
    awaiting = None if e.awaiting_chip is None else stricter(e.awaiting_chip)
    return replace(e, status=stricter(e.status), awaiting_chip=awaiting,
                   messages=first + messages)
