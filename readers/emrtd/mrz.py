"""Machine-readable zone (ICAO 9303-3, 9303-5 TD1) and the BAC access key it gives.

Vietnamese cards (DOMAIN.md §4): line 1 ``IDVNM`` + document number (the last 9 digits of the
12-digit ID) + check digit + the full ID in the optional data; line 2 DOB, sex, expiry,
nationality, composite check digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from readers.errors import AccessKeyFormatError, MrzError

_WEIGHTS = (7, 3, 1)
_MRZ_CHARS = re.compile(r"[0-9A-Z<]+")
_YYMMDD = re.compile(r"[0-9]{6}")


def _value(ch: str) -> int:
    if "0" <= ch <= "9":  # not str.isdigit: "①", "²" and "٣" are digits to it
        return ord(ch) - 48
    if "A" <= ch <= "Z":
        return ord(ch) - 55
    if ch == "<":
        return 0
    raise MrzError("character not allowed in the MRZ")


def check_digit(field: str) -> str:
    """ICAO 9303-3 §4.9: weights 7, 3, 1 repeating, modulo 10."""
    return str(sum(_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field)) % 10)


def _checked(field: str, digit: str, what: str) -> str:
    if check_digit(field) != digit:
        raise MrzError(f"{what}: check digit does not match")
    return field


def _is_day(yymmdd: str) -> bool:
    """A calendar day in one of the two centuries the two-digit year can mean."""
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    for century in (1900, 2000):
        try:
            date(century + yy, mm, dd)
            return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True, slots=True)
class AccessKey:
    """What BAC needs: document number, date of birth and date of expiry (YYMMDD)."""

    document_number: str
    date_of_birth: str
    date_of_expiry: str

    def __post_init__(self) -> None:
        if not self.document_number or not _MRZ_CHARS.fullmatch(self.document_number):
            raise MrzError("document number has characters outside the MRZ set")
        for value in (self.date_of_birth, self.date_of_expiry):
            if not (_YYMMDD.fullmatch(value) and _is_day(value)):
                raise AccessKeyFormatError("MRZ dates are YYMMDD")

    def mrz_information(self) -> str:
        """ICAO 9303-11 §9.7.1 (Appendix D.1): doc + cd + DOB + cd + expiry + cd."""
        doc = self.document_number.ljust(9, "<")
        return (doc + check_digit(doc) + self.date_of_birth + check_digit(self.date_of_birth)
                + self.date_of_expiry + check_digit(self.date_of_expiry))


@dataclass(frozen=True, slots=True)
class CanKey:
    """PACE's card access number: on Vietnamese cards the last 6 digits of the ID."""

    can: str

    def __post_init__(self) -> None:
        if not (len(self.can) == 6 and self.can.isascii() and self.can.isdigit()):
            raise AccessKeyFormatError("the CAN is 6 digits")

    def mrz_information(self) -> str:  # a label for fingerprints, like AccessKey's
        return "CAN:" + self.can


@dataclass(frozen=True, slots=True)
class Td1:
    document_code: str
    issuer: str
    document_number: str
    optional_data: str
    date_of_birth: str
    sex: str
    date_of_expiry: str
    nationality: str
    optional_data_2: str
    names: str

    @property
    def access_key(self) -> AccessKey:
        return AccessKey(self.document_number, self.date_of_birth, self.date_of_expiry)

    @property
    def id_number(self) -> str | None:
        """The 12-digit ID that Vietnamese cards put in the optional data of line 1, with
        its own check digit after two fillers (``001093047064<<2``, DOMAIN.md §4): None when
        that digit does not hold — only the composite covers the ID's first three digits
        (the province), and an OCR slip there passes it as often as not."""
        digits, fillers, check = (self.optional_data[:12], self.optional_data[12:14],
                                  self.optional_data[14:15])
        if not (len(digits) == 12 and digits.isascii() and digits.isdigit()):
            return None
        return digits if fillers == "<<" and check == check_digit(digits) else None


def yymmdd_to_date(value: str, *, pivot_year: int) -> date | None:
    """YYMMDD as a date, the century chosen so the year is ≤ ``pivot_year`` (+ 0 or 100)."""
    if not _YYMMDD.fullmatch(value):
        return None
    yy, mm, dd = int(value[:2]), int(value[2:4]), int(value[4:])
    year = 2000 + yy if 2000 + yy <= pivot_year else 1900 + yy
    try:
        return date(year, mm, dd)
    except ValueError:
        return None


def parse_td1(text: str) -> Td1:
    """Three lines of 30 characters (line breaks optional), every check digit verified."""
    s = "".join(text.split()).upper()
    if len(s) != 90 or not _MRZ_CHARS.fullmatch(s):
        raise MrzError("a TD1 MRZ is 3 lines of 30 characters")
    l1, l2, l3 = s[:30], s[30:60], s[60:]
    number = l1[5:14]
    number = _checked(number, l1[14], "document number").rstrip("<")
    dob = _checked(l2[0:6], l2[6], "date of birth")
    expiry = _checked(l2[8:14], l2[14], "date of expiry")
    composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
    _checked(composite, l2[29], "composite")
    return Td1(
        document_code=l1[0:2].rstrip("<"), issuer=l1[2:5], document_number=number,
        optional_data=l1[15:30], date_of_birth=dob, sex=l2[7], date_of_expiry=expiry,
        nationality=l2[15:18], optional_data_2=l2[18:29], names=l3,
    )


def access_key_from_line2(line2: str, document_number: str) -> AccessKey:
    """BAC key from MRZ line 2 typed by staff (dates with their check digits)."""
    s = "".join(line2.split()).upper()
    if len(s) < 15:
        raise MrzError("MRZ line 2 is 30 characters")
    dob = _checked(s[0:6], s[6], "date of birth")
    expiry = _checked(s[8:14], s[14], "date of expiry")
    return AccessKey(document_number, dob, expiry)
