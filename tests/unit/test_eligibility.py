"""The eligibility decision from a registry answer (pure: fixed day, tables, facility)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time

import pytest

from tests.helpers.samples import DOMAIN_CODES, TODAY
from verify.eligibility import DecisionContext, Source, decide, undecided
from verify.model import VN_TZ, BirthDate, Credential, CredentialKind, Sex
from verify.registry import RegistryAnswer
from verify.tables import Severity, Status, Tables

NOW = datetime.combine(TODAY, time(8, 0), tzinfo=VN_TZ)
CARD = Credential(kind=CredentialKind.MANUAL, card_code="GD4010111077012",
                  full_name="Nguyễn Tiến Đạt", date_of_birth=BirthDate(1988, 3, 29))
GOOD = RegistryAnswer(
    code="000", card_code="GD4010111077012", full_name="Nguyễn Tiến Đạt",
    date_of_birth=BirthDate(1988, 3, 29), sex=Sex.MALE, registered_facility="01C54",
    valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31),
)


@pytest.fixture
def ctx(tables: Tables) -> DecisionContext:
    return DecisionContext(tables, "01C54", NOW)


def codes(e: object) -> list[str]:
    return [m.code for m in e.messages]  # type: ignore[attr-defined]


def test_valid_card_here(ctx: DecisionContext) -> None:
    e = decide(GOOD, CARD, ctx)
    assert e.status is Status.ELIGIBLE
    assert e.source is Source.REGISTRY
    assert (e.benefit_level, e.benefit_percent, e.object_code) == (4, 80, "GD")
    assert e.is_registered_here is True
    assert e.days_left == (date(2026, 12, 31) - TODAY).days
    assert codes(e)[0] == "registry_000"
    assert "registered_here" in codes(e)
    assert e.data_as_of == e.checked_at == NOW
    assert e.to_json()["valid_to"] == "2026-12-31"
    assert e.to_json()["person"] == {"full_name": "Nguyễn Tiến Đạt",
                                     "date_of_birth": "1988-03-29", "sex": "male"}


def test_other_facility_is_flagged(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, registered_facility="79012"), CARD, ctx)
    assert e.status is Status.ELIGIBLE
    assert e.is_registered_here is False
    msg = next(m for m in e.messages if m.code == "not_registered_here")
    assert msg.severity is Severity.WARNING and "79012" in msg.vi


@pytest.mark.parametrize(("valid_from", "valid_to", "status", "code"), [
    (date(2026, 4, 1), date(2026, 12, 31), Status.NOT_ELIGIBLE, "card_not_yet_valid"),
    (date(2025, 1, 1), date(2026, 3, 15), Status.NOT_ELIGIBLE, "card_expired"),
    (date(2025, 1, 1), date(2026, 3, 16), Status.ELIGIBLE, "expiring_soon"),   # last day
    (date(2025, 1, 1), date(2026, 4, 15), Status.ELIGIBLE, "expiring_soon"),   # 30 days
])
def test_validity_window_against_today(ctx: DecisionContext, valid_from: date, valid_to: date,
                                       status: Status, code: str) -> None:
    e = decide(replace(GOOD, valid_from=valid_from, valid_to=valid_to), CARD, ctx)
    assert e.status is status
    assert code in codes(e)


def test_31_days_left_is_not_expiring_soon(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, valid_to=date(2026, 4, 16)), CARD, ctx)
    assert "expiring_soon" not in codes(e)


def test_003_uses_the_new_card(ctx: DecisionContext) -> None:
    answer = replace(GOOD, code="003", valid_to=date(2026, 3, 1), new_card_code="GD4010111077099",
                     new_valid_from=date(2026, 3, 2), new_valid_to=date(2027, 3, 1),
                     new_registered_facility="79012", new_registered_facility_name="BV Q5")
    e = decide(answer, CARD, ctx)
    assert e.status is Status.ELIGIBLE
    assert e.card_code == "GD4010111077099"
    assert e.valid_to == date(2027, 3, 1)
    assert e.is_registered_here is False
    assert e.new_card is not None and e.new_card.registered_facility_name == "BV Q5"
    assert "new_card" in codes(e)


def test_004_keeps_the_old_card_and_announces_the_new(ctx: DecisionContext) -> None:
    answer = replace(GOOD, code="004", new_card_code="GD4010111077099",
                     new_valid_from=date(2027, 1, 1), new_valid_to=date(2027, 12, 31))
    e = decide(answer, CARD, ctx)
    assert e.status is Status.ELIGIBLE
    assert e.card_code == "GD4010111077012"
    assert e.to_json()["new_card"]["card_code"] == "GD4010111077099"


def test_2026_override_with_printed_digit(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, card_code="CN3010200000001"), CARD, ctx)
    assert (e.benefit_level, e.benefit_percent) == (2, 100)
    m = next(m for m in e.messages if m.code == "benefit_digit_differs")
    assert "01/01/2026" in m.vi and "3" in m.vi


def test_unknown_object_code_needs_review(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, card_code="AK4010200000040"), CARD, ctx)
    assert e.status is Status.NEEDS_REVIEW
    assert e.object_code == "AK" and e.benefit_level is None
    assert "benefit_unknown_object" in codes(e)


@pytest.mark.parametrize("missing", [{"card_code": None, "valid_to": None},
                                     {"valid_to": None}, {"card_code": None}])
def test_000_without_the_card_code_or_its_validity_is_not_eligible(
        ctx: DecisionContext, missing: dict[str, None]) -> None:
    """``{"maKetQua": "000"}`` and nothing else was "eligible", valid to nobody knew when,
    the benefit read off the code the patient typed."""
    e = decide(replace(GOOD, **missing), CARD, ctx)  # type: ignore[arg-type]
    assert e.status is Status.NEEDS_REVIEW
    assert "registry_answer_incomplete" in [m.code for m in e.messages]
    assert decide(GOOD, CARD, ctx).status is Status.ELIGIBLE


def test_bhxh_number_only_needs_review_for_the_benefit(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, card_code="0111077012"), CARD, ctx)
    assert e.status is Status.NEEDS_REVIEW
    assert "benefit_no_object" in codes(e)


def test_undocumented_code_is_kept(ctx: DecisionContext) -> None:
    e = decide(RegistryAnswer(code="999"), CARD, ctx)
    assert e.status is Status.NEEDS_REVIEW
    assert e.registry_code == "999"
    m = e.messages[0]
    assert m.code == "unknown_registry_code" and "999" in m.vi and "999" in m.en


@pytest.mark.parametrize("code", DOMAIN_CODES)
def test_every_domain_code_decides_with_a_message(ctx: DecisionContext, code: str) -> None:
    data = code in {"000", "003", "004", "010"}
    answer = replace(GOOD, code=code) if data else RegistryAnswer(code=code)
    if code == "003":
        answer = replace(answer, new_card_code="GD4010111077099",
                         new_valid_to=date(2027, 1, 1))
    e = decide(answer, CARD, ctx)
    assert e.registry_code == code
    assert e.messages[0].code == f"registry_{code}"
    assert all(m.vi and m.en for m in e.messages)
    expected = ctx.tables.registry_codes[code].status
    if code == "010":
        expected = Status.NOT_ELIGIBLE
    assert e.status is expected


def test_010_states_the_expiry_date(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, code="010", valid_to=date(2026, 2, 1)), CARD, ctx)
    assert e.status is Status.NOT_ELIGIBLE
    assert "01/02/2026" in next(m.vi for m in e.messages if m.code == "card_expired")


def test_five_years_and_area_code(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, five_years_date=date(2020, 1, 1), area_code="K2"), CARD, ctx)
    assert e.five_years_reached is True and e.area_code == "K2"
    assert {"five_years_reached", "area_code"} <= set(codes(e))
    later = decide(replace(GOOD, five_years_date=date(2027, 10, 1)), CARD, ctx)
    assert later.five_years_reached is False and "five_years_pending" in codes(later)


def test_name_and_dob_mismatch_warn(ctx: DecisionContext) -> None:
    presented = replace(CARD, full_name="Nguyễn Tiến Dat", date_of_birth=BirthDate(1988, 3, 28))
    e = decide(GOOD, presented, ctx)
    assert e.status is Status.ELIGIBLE
    assert {"name_mismatch", "dob_mismatch"} <= set(codes(e))
    # Case and spacing are not a mismatch; a year-only DOB matches its year.
    same = replace(CARD, full_name="  NGUYỄN  TIẾN ĐẠT ", date_of_birth=BirthDate(1988))
    assert not {"name_mismatch", "dob_mismatch"} & set(codes(decide(GOOD, same, ctx)))


def test_id_cross_check_warns(ctx: DecisionContext) -> None:
    presented = Credential(kind=CredentialKind.CCCD_QR, id_number="001098012345",
                           full_name="Nguyễn Văn B", date_of_birth=BirthDate(2000, 1, 1),
                           sex=Sex.FEMALE)
    e = decide(replace(GOOD, full_name="Nguyễn Văn B", date_of_birth=BirthDate(2000, 1, 1)),
               presented, ctx)
    assert {"id_sex_mismatch", "id_birth_year_mismatch"} <= set(codes(e))


def test_messages_are_ordered_by_severity(ctx: DecisionContext) -> None:
    e = decide(replace(GOOD, registered_facility="79012", valid_to=date(2026, 3, 20)), CARD, ctx)
    ranks = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.OK: 2, Severity.INFO: 3}
    rest = [ranks[m.severity] for m in e.messages[1:]]
    assert rest == sorted(rest)


def test_undecided_is_needs_review_with_no_source(ctx: DecisionContext) -> None:
    e = undecided(CARD, ctx, "registry_unavailable")
    assert e.status is Status.NEEDS_REVIEW and e.source is Source.NONE
    assert e.data_as_of is None and e.registry_code is None
    j = e.to_json()
    assert j["source"] == "none" and j["messages"][0]["code"] == "registry_unavailable"


# -- a chip read answered at identity time: provisional until it ends ---------------------------
def _chip(completeness: object, aa: object = None) -> Credential:
    from readers.emrtd.pa import PassiveAuth, PaStatus
    from verify.evidence import Check, ChipDetails, ChipEvidence, Completeness, MrzSummary

    assert isinstance(completeness, Completeness)
    evidence = ChipEvidence(ChipDetails(MrzSummary("088004321", "880329", "280329", "M", "VNM"),
                                        "pace"), PassiveAuth(PaStatus.AUTHENTIC, None),
                            active_auth=aa if isinstance(aa, Check) else Check.NOT_SUPPORTED,
                            completeness=completeness)
    return replace(CARD, kind=CredentialKind.CHIP, chip=evidence)


def test_a_chip_answer_is_provisional_until_the_read_settles_it(ctx: DecisionContext,
                                                               tables: Tables) -> None:
    """At identity time Active Authentication is still to come: the answer is needs_review,
    provisional, and says the chip is being read (it said eligible, chip_authentic). The
    settled answer starts again from the registry's: eligible when the chip proved
    everything, needs_review when AA failed."""
    from verify.eligibility import chip_final
    from verify.evidence import Check, Completeness

    first = decide(GOOD, _chip(Completeness.IDENTITY), ctx)
    assert first.status is Status.NEEDS_REVIEW and first.provisional
    assert first.to_json()["provisional"] is True
    assert "chip_read_in_progress" in codes(first) and "chip_authentic" not in codes(first)
    good = chip_final(first, _chip(Completeness.COMPLETE, Check.PASSED), tables)
    assert good.status is Status.ELIGIBLE and not good.provisional
    assert "chip_authentic" in codes(good) and "chip_read_in_progress" not in codes(good)
    assert "provisional" not in good.to_json()
    copy = chip_final(first, _chip(Completeness.COMPLETE, Check.FAILED), tables)
    assert copy.status is Status.NEEDS_REVIEW and "chip_copy_suspected" in codes(copy)
    torn = chip_final(first, _chip(Completeness.INCOMPLETE), tables)
    assert torn.status is Status.NEEDS_REVIEW and "chip_read_incomplete" in codes(torn)


def test_a_provisional_offline_answer_settles_no_better_than_offline(
        ctx: DecisionContext, tables: Tables) -> None:
    """An expired snapshot's answer is needs_review whatever the chip proves: the settled
    answer must not fall back to the stored "eligible"."""
    from datetime import timedelta

    from verify.eligibility import chip_final, offline_decide
    from verify.evidence import Check, Completeness

    first = offline_decide(GOOD, _chip(Completeness.IDENTITY), ctx, data_as_of=NOW - timedelta(
        days=20), notice="offline_snapshot", expired_days=13.0, from_snapshot=True,
        version="3", date="01/11/2026")
    assert first.provisional and first.status is Status.NEEDS_REVIEW
    settled = chip_final(first, _chip(Completeness.COMPLETE, Check.PASSED), tables)
    assert settled.status is Status.NEEDS_REVIEW and "snapshot_expired" in codes(settled)
