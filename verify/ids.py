"""The two identifiers of the desk: the 12-digit citizen ID and the BHYT card code (DOMAIN.md §2).

Parsing is strict about shape; cross-checks between the ID and other data are returned as
findings (a warning for staff), never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from verify.errors import CardCodeError, IdNumberError
from verify.model import BirthDate, Sex, is_digits

_ID12 = re.compile(r"[0-9]{12}")


@dataclass(frozen=True, slots=True)
class CitizenId:
    """``PPP G YY NNNNNN``: province of birth registration, sex/century, year, serial."""

    number: str

    @property
    def province_code(self) -> str:
        return self.number[:3]

    @property
    def sex(self) -> Sex:
        # Even gender digit = male, odd = female (Thông tư 07/2016/TT-BCA, Điều 7).
        return Sex.MALE if int(self.number[3]) % 2 == 0 else Sex.FEMALE

    @property
    def birth_year(self) -> int:
        # Digit pairs 0/1 → 1900s, 2/3 → 2000s, 4/5 → 2100s, 6/7 → 2200s, 8/9 → 2300s.
        century = 1900 + 100 * (int(self.number[3]) // 2)
        return century + int(self.number[4:6])

    @property
    def document_number(self) -> str:
        """The chip's MRZ document number: the last 9 digits (DOMAIN.md §4)."""
        return self.number[3:]


def parse_citizen_id(text: str) -> CitizenId:
    s = text.strip()
    if not _ID12.fullmatch(s):
        raise IdNumberError("citizen ID is not 12 digits")
    return CitizenId(s)


def cross_check_id(
    cid: CitizenId,
    *,
    date_of_birth: BirthDate | None,
    sex: Sex | None,
    province_names: dict[str, str],
) -> list[str]:
    """Findings where the ID number disagrees with the DOB or sex read elsewhere.

    Returns message codes from the tables (``id_sex_mismatch``, ``id_birth_year_mismatch``,
    ``id_province_unknown``); an empty list means everything agrees.
    """
    findings: list[str] = []
    if sex is not None and sex is not cid.sex:
        findings.append("id_sex_mismatch")
    if date_of_birth is not None and date_of_birth.year != cid.birth_year:
        findings.append("id_birth_year_mismatch")
    if cid.province_code[0] != "0" or cid.province_code[1:] not in province_names:
        findings.append("id_province_unknown")
    return findings


class CardCodeKind(StrEnum):
    CLASSIC = "classic"      # 15 characters: object, benefit digit, province, 10 more
    BHXH = "bhxh"            # 10 digits: the social insurance number (2021 model cards)
    CCCD = "cccd"            # 12 digits: a citizen ID used in place of the card (since 2022)


_CLASSIC = re.compile(r"([A-Z]{2})([1-5])([0-9]{2})([A-Z0-9]{10})")
_BHXH = re.compile(r"[0-9]{10}")
_FACILITY_SUFFIX = re.compile(r"[A-Z0-9]{5}")


@dataclass(frozen=True, slots=True)
class CardCode:
    """A normalised card code, with what its shape tells (DOMAIN.md §2)."""

    code: str
    kind: CardCodeKind
    object_code: str | None = None
    benefit_digit: int | None = None
    province: str | None = None
    bhxh_number: str | None = None
    facility_suffix: str | None = None

    @property
    def is_legacy(self) -> bool:
        """Classic codes issued before the 10-digit BHXH number had letters in the tail."""
        return self.kind is CardCodeKind.CLASSIC and self.bhxh_number is None


def parse_card_code(text: str) -> CardCode:
    """Accept 10, 12, 15 characters, or 20 (15 + a 5-character facility code some HIS add)."""
    s = re.sub(r"[\s-]", "", text).upper()
    if _BHXH.fullmatch(s):
        return CardCode(s, CardCodeKind.BHXH, bhxh_number=s)
    if _ID12.fullmatch(s):
        return CardCode(s, CardCodeKind.CCCD)
    suffix = None
    if len(s) == 20 and _FACILITY_SUFFIX.fullmatch(s[15:]):
        s, suffix = s[:15], s[15:]
    m = _CLASSIC.fullmatch(s)
    if not m:
        raise CardCodeError("card code has the wrong shape")
    tail = m[4]
    return CardCode(
        code=s,
        kind=CardCodeKind.CLASSIC,
        object_code=m[1],
        benefit_digit=int(m[2]),
        province=m[3],
        bhxh_number=tail if is_digits(tail) else None,
        facility_suffix=suffix,
    )


def normalize_facility(text: str) -> str:
    """``"79 - 012"`` (QR form) and ``"79012"`` (registry form) compare equal."""
    return re.sub(r"[\s-]", "", text).upper()
