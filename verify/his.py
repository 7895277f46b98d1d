"""The check-in record an HIS fills its reception form with, in the field names and formats
of QĐ 130/QĐ-BYT (bảng XML1, thông tin hành chính): dates ``yyyyMMdd``, birth ``yyyyMMddHHmm``
(``0000`` for the time; a birth known to the year only as ``yyyy00000000``), sex 1 male /
2 female / 3 unknown. Field list and formats from one source (the issue text and the decision
as we read it): correct here if an HIS integrator finds otherwise.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from verify.eligibility import Eligibility
from verify.model import VN_TZ, BirthDate, Credential, Sex, sex_vi

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


def card_fields(c: Credential, day: Callable[[date | None], str]) -> dict[str, str]:
    """What the card says, in the order both desk-reader vendors send it, under neutral names,
    every value a string ("" when absent) and dates written by ``day`` — one place for the
    HN212 feed's id 2 (verify/hn212.py) and the webhook body (verify/webhook.py)."""
    details = c.chip.details if c.chip is not None else None

    def text(key: str) -> str:
        value = getattr(details, key, None)
        return value if isinstance(value, str) else ""

    dob, expiry = c.date_of_birth, details.expiry_date if details is not None else None
    return {
        "id": c.id_number or "",
        "old_id": c.old_id_number or "",
        "name": c.full_name or "",
        "birth": (day(dob.exact) if dob and dob.exact else f"{dob.year:04d}" if dob else ""),
        "sex": sex_vi(c.sex) if c.sex in (Sex.MALE, Sex.FEMALE) else "",
        "nationality": text("nationality"),
        "ethnicity": text("ethnicity"),
        "religion": text("religion"),
        "origin": text("place_of_origin"),
        "residence": text("place_of_residence") or c.address or "",
        "features": text("identifying_features"),
        "issued": day(c.issue_date),
        "expires": day(expiry) if expiry is not None else "",
        "father": text("father_name"),
        "mother": text("mother_name"),
        "spouse": text("spouse_name"),
    }


# QĐ 4750/QĐ-BYT (amending QĐ 130), bảng 0 "trạng thái KCB" (check-in), in the decision's
# element order; one source (an HIS's design documents, DOMAIN.md §7), element names upper
# case as in every XML table of QĐ 130 and the gateway's samples.
XML0_FIELDS = ("MA_LK", "STT", "MA_BN", "HO_TEN", "SO_CCCD", "NGAY_SINH", "GIOI_TINH",
               "MA_THE_BHYT", "MA_DKBD", "GT_THE_TU", "GT_THE_DEN", "MA_DOITUONG_KCB",
               "NGAY_VAO", "NGAY_VAO_NOI_TRU", "LY_DO_VNT", "MA_LY_DO_VNT", "MA_LOAI_KCB",
               "MA_CSKCB", "MA_DICH_VU", "TEN_DICH_VU", "MA_THUOC", "TEN_THUOC", "MA_VAT_TU",
               "TEN_VAT_TU", "NGAY_YL", "DU_PHONG")


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    """Characters XML 1.0 cannot carry (control characters a QR or a chip may hold) are
    dropped: ElementTree would write them and the HIS's parser would refuse the file."""
    return _NOT_XML.sub("", text)


def link_code(facility: str, checked_at: datetime, fingerprint: str | None) -> str:
    """A MA_LK for this reception (the HIS may replace it with its own): the facility, the
    minute and second of the check in Vietnam time, and a keyed-fingerprint prefix — unique
    per desk and patient, and saying nothing about the patient."""
    stamp = checked_at.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")
    return f"{facility}{stamp}{(fingerprint or '')[:6].upper()}"


def checkin_xml(credential: Credential, eligibility: Eligibility, facility: str) -> bytes:
    """XML 0 (``CHI_TIEU_TRANG_THAI_KCB``) with what the terminal knows, UTF-8 with its
    declaration; what only the HIS knows (patient number, services, inpatient fields) is left
    empty, and ``CHUKYDONVI`` (the facility's signature) is the HIS's to fill."""
    rec = checkin_record(credential, eligibility)
    known = {
        "MA_LK": link_code(facility, eligibility.checked_at, credential.raw_fingerprint),
        "STT": "1",
        "HO_TEN": rec["ho_ten"], "SO_CCCD": rec["so_cccd"], "NGAY_SINH": rec["ngay_sinh"],
        "GIOI_TINH": str(rec["gioi_tinh"]), "MA_THE_BHYT": rec["ma_the_bhyt"],
        "MA_DKBD": rec["ma_dkbd"], "GT_THE_TU": rec["gt_the_tu"],
        "GT_THE_DEN": rec["gt_the_den"],
        "NGAY_VAO": eligibility.checked_at.astimezone(VN_TZ).strftime("%Y%m%d%H%M"),
        "MA_CSKCB": facility,
    }
    root = ET.Element("CHI_TIEU_TRANG_THAI_KCB")
    row = ET.SubElement(ET.SubElement(root, "DSACH_TRANG_THAI_KCB"), "TRANG_THAI_KCB")
    for name in XML0_FIELDS:
        ET.SubElement(row, name).text = xml_text(known.get(name) or "")
    ET.SubElement(root, "CHUKYDONVI").text = ""
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body.encode("utf-8")
