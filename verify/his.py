"""The check-in record an HIS fills its reception form with, in the field names and formats
of QĐ 130/QĐ-BYT (bảng XML1, thông tin hành chính): dates ``yyyyMMdd``, birth ``yyyyMMddHHmm``
(``0000`` for the time; a birth known to the year only as ``yyyy00000000``), sex 1 male /
2 female / 3 unknown. Field list and formats from one source (the issue text and the decision
as we read it): correct here if an HIS integrator finds otherwise.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from verify.eligibility import Eligibility
from verify.model import BirthDate, Credential, Sex

FORMAT = "QĐ 130/QĐ-BYT XML1 (hành chính)"


def _day(d: date | None) -> str | None:
    return d.strftime("%Y%m%d") if d else None


def _birth(b: BirthDate | None) -> str | None:
    if b is None:
        return None
    exact = b.exact
    return exact.strftime("%Y%m%d") + "0000" if exact else f"{b.year:04d}00000000"


def checkin_record(credential: Credential, eligibility: Eligibility) -> dict[str, Any]:
    person = eligibility.person
    sex = (person.sex if person else None) or credential.sex
    card = eligibility.card_code or credential.card_code
    return {
        "format": FORMAT,
        "ho_ten": (person.full_name if person else None) or credential.full_name,
        "so_cccd": credential.id_number,
        "ngay_sinh": _birth((person.date_of_birth if person else None)
                            or credential.date_of_birth),
        "gioi_tinh": 1 if sex is Sex.MALE else 2 if sex is Sex.FEMALE else 3,
        "dia_chi": credential.address,
        "ma_the_bhyt": card if card and len(card) == 15 else None,
        "ma_dkbd": eligibility.registered_facility,
        "gt_the_tu": _day(eligibility.valid_from),
        "gt_the_den": _day(eligibility.valid_to),
        "ma_khuvuc": eligibility.area_code,
        # Not QĐ 130 fields: what the terminal decided, so the HIS can refuse to fill a form
        # from an answer that still needs review.
        "status": eligibility.status.value,
        "source": eligibility.source.value,
        "checked_at": eligibility.checked_at.isoformat(),
    }
