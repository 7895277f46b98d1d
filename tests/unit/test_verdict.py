"""One chip verdict (verify/evidence.py), the same for the daemon and ``tiepdon card read``.

Every passive / active / chip authentication outcome, and an unfinished read: the table below
is the definition written out; the daemon's ``chip`` event, the webhook and the HN212 feed take
``ChipEvidence.reported()``; the CLI's exit code takes ``card_read_exit``; the eligibility
decision never stays ``eligible`` when the chip may be a copy or its read did not finish.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime

import pytest

from readers.emrtd.pa import PassiveAuth, PaStatus
from terminal.cli.card import card_read_exit
from terminal.cli.common import EXIT_NEGATIVE, EXIT_OK
from verify.eligibility import Eligibility, Source, chip_final
from verify.evidence import (
    Check,
    ChipDetails,
    ChipEvidence,
    Completeness,
    MrzSummary,
    Verdict,
)
from verify.model import VN_TZ, Credential, CredentialKind
from verify.tables import Status, Tables
from verify.webhook import body

DETAILS = ChipDetails(MrzSummary("088004321", "880329", "280329", "M", "VNM"), "pace")
PA = {s: PassiveAuth(s, None if s is PaStatus.AUTHENTIC else "reason") for s in PaStatus}


def expected(pa: PaStatus, aa: Check, ca: Check, completeness: Completeness) -> Verdict:
    if completeness is Completeness.INCOMPLETE:
        return Verdict.INCOMPLETE
    if Check.FAILED in (aa, ca):
        return Verdict.COPY_SUSPECTED
    if pa is PaStatus.AUTHENTIC and Check.NOT_VERIFIED not in (aa, ca):
        return Verdict.VERIFIED
    return Verdict.NOT_VERIFIED


CASES = list(itertools.product(PaStatus, Check, Check,
                               (Completeness.COMPLETE, Completeness.INCOMPLETE)))


@pytest.mark.parametrize(("pa", "aa", "ca", "completeness"), CASES)
def test_cli_and_daemon_agree_on_the_verdict(pa: PaStatus, aa: Check, ca: Check,
                                             completeness: Completeness,
                                             tables: Tables) -> None:
    evidence = ChipEvidence(DETAILS, PA[pa], active_auth=aa, chip_auth=ca,
                            completeness=completeness)
    want = expected(pa, aa, ca, completeness)
    assert evidence.verdict is want
    # The daemon: the chip event, the webhook and HN212 id 5 all say reported().verdict.
    assert evidence.reported().verdict == want.value
    credential = Credential(kind=CredentialKind.CHIP, id_number="001088004321",
                            full_name="NGUYỄN TIẾN ĐẠT", chip=evidence)
    hook = body(credential, {}, event_id="e", photo=None)
    assert hook["verdict"] == want.value
    # The CLI: exit 0 only for verified.
    assert card_read_exit(evidence) == (EXIT_OK if want is Verdict.VERIFIED else EXIT_NEGATIVE)
    # The decision: anything but verified or an unanchored signature needs a look.
    eligible = Eligibility(status=Status.ELIGIBLE, source=Source.REGISTRY,
                           checked_at=datetime(2026, 12, 4, 9, 0, tzinfo=VN_TZ),
                           data_as_of=None, messages=(), valid_from=date(2026, 1, 1))
    final = chip_final(eligible, credential, tables)
    stays = want is Verdict.VERIFIED or (want is Verdict.NOT_VERIFIED
                                         and pa is PaStatus.UNANCHORED
                                         and Check.NOT_VERIFIED not in (aa, ca))
    assert (final.status is Status.ELIGIBLE) is stays


def test_an_unfinished_read_reports_nothing_proved() -> None:
    evidence = ChipEvidence(DETAILS, PA[PaStatus.AUTHENTIC], active_auth=Check.PASSED,
                            chip_auth=Check.PASSED).unfinished()
    r = evidence.reported()
    assert (r.passive_auth, r.active_auth, r.chip_auth, r.verdict) == (
        "incomplete", "not_verified", "not_verified", "incomplete")
    assert evidence.to_json()["incomplete"] is True


def test_a_check_not_done_is_not_called_a_copy(tables: Tables) -> None:
    """Our limit (a DG14 this terminal cannot use) needs review, but never says BẢN SAO."""
    evidence = ChipEvidence(DETAILS, PA[PaStatus.AUTHENTIC], chip_auth=Check.NOT_VERIFIED,
                            chip_auth_reason="unsupported curve")
    credential = Credential(kind=CredentialKind.CHIP, chip=evidence)
    eligible = Eligibility(status=Status.ELIGIBLE, source=Source.REGISTRY,
                           checked_at=datetime(2026, 12, 4, 9, 0, tzinfo=VN_TZ),
                           data_as_of=None, messages=())
    final = chip_final(eligible, credential, tables)
    codes = [m.code for m in final.messages]
    assert final.status is Status.NEEDS_REVIEW
    assert "chip_check_not_done" in codes and "chip_copy_suspected" not in codes
    assert "BẢN SAO" not in " ".join(m.vi for m in final.messages)
