"""Value types shared by the whole core: sex, partial birth dates, the presented credential.

Dates from cards and the registry come as ``dd/MM/yyyy``, ``ddMMyyyy`` or a bare year; they are
parsed strictly (the day must exist) and shown as ISO 8601, reduced to ``YYYY`` when only the
year is known.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import date, timedelta, timezone
from enum import StrEnum
from typing import Any

from readers.emrtd.mrz import AccessKey
from verify.errors import DateFormatError, InputFormatError
from verify.evidence import ChipEvidence


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class CredentialKind(StrEnum):
    CCCD_QR = "cccd_qr"
    BHYT_QR = "bhyt_qr"
    CHIP = "chip"
    MANUAL = "manual"
    # Read from the printed card by OCR (verify/ocr.py): staff confirm before they count.
    CCCD_TEXT = "cccd_text"
    CCCD_MRZ = "cccd_mrz"
    BHYT_TEXT = "bhyt_text"


_SEX_WORDS = {"nam": Sex.MALE, "nữ": Sex.FEMALE, "nu": Sex.FEMALE, "male": Sex.MALE,
              "female": Sex.FEMALE, "1": Sex.MALE, "2": Sex.FEMALE, "m": Sex.MALE, "f": Sex.FEMALE}


def parse_sex(text: str) -> Sex | None:
    """``Nam``/``Nữ`` (any case), ``1``/``2`` (BHYT QR), ``male``/``female``; else None —
    text with a lone surrogate included. Never raises."""
    if not is_unicode(text):
        return None
    return _SEX_WORDS.get(normalize_text(text).casefold())


def sex_vi(sex: Sex) -> str:
    return "Nam" if sex is Sex.MALE else "Nữ"


def is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts other scripts' digits (``٠``)."""
    return text.isascii() and text.isdigit()


def is_unicode(text: str) -> bool:
    """No lone surrogate (JSON's "\\udca5" decodes to one): the text can be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_unicode(text: str, what: str = "text") -> str:
    """Text that can be encoded: a lone surrogate (JSON "\\udca5") is refused here, at the
    boundary, with a clear error — never later as a UnicodeEncodeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputFormatError(f"{what} is not valid Unicode") from None
    return text


def normalize_text(text: str) -> str:
    """NFC, trimmed, inner whitespace collapsed: how names and addresses are kept. Never
    raises: a lone surrogate (no encoder takes it) is dropped, so the result can always be
    stored and sent. Entry points that must refuse such text say so first with
    :func:`check_unicode`."""
    if not is_unicode(text):
        text = "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")
    return " ".join(unicodedata.normalize("NFC", text).split())


def same_name(a: str, b: str) -> bool:
    """Names match when equal after NFC, case folding and whitespace collapsing."""
    return normalize_text(a).casefold() == normalize_text(b).casefold()


_DMY = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})")
_DMY8 = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{4})")
_YEAR = re.compile(r"([0-9]{4})")
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

MIN_YEAR = 1870
MAX_YEAR = 2199


def _make_date(year: int, month: int, day: int, text: str) -> date:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DateFormatError(f"year out of range in date {len(text)}-char field")
    try:
        return date(year, month, day)
    except ValueError as e:
        raise DateFormatError("date does not exist") from e


def parse_dmy(text: str) -> date:
    """A full date: ``dd/MM/yyyy`` (also ``-`` or ``.``), ``ddMMyyyy`` or ISO ``yyyy-MM-dd``."""
    s = text.strip()
    if m := _DMY.fullmatch(s):
        return _make_date(int(m[3]), int(m[2]), int(m[1]), s)
    if m := _DMY8.fullmatch(s):
        return _make_date(int(m[3]), int(m[2]), int(m[1]), s)
    if m := _ISO.fullmatch(s):
        return _make_date(int(m[1]), int(m[2]), int(m[3]), s)
    raise DateFormatError("not a day/month/year date")


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A date of birth that may be known to the year only (old cards print just the year)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if (self.month is None) != (self.day is None):
            raise DateFormatError("birth date needs both day and month, or neither")
        if self.month is not None and self.day is not None:
            _make_date(self.year, self.month, self.day, "")
        elif not MIN_YEAR <= self.year <= MAX_YEAR:
            raise DateFormatError("birth year out of range")

    @classmethod
    def of(cls, d: date) -> BirthDate:
        return cls(d.year, d.month, d.day)

    @property
    def exact(self) -> date | None:
        if self.month is None or self.day is None:
            return None
        return date(self.year, self.month, self.day)

    def iso(self) -> str:
        d = self.exact
        return d.isoformat() if d else f"{self.year:04d}"

    def dmy(self) -> str:
        """The registry's ``ngaySinh`` form: ``dd/MM/yyyy`` or ``yyyy``."""
        d = self.exact
        return d.strftime("%d/%m/%Y") if d else f"{self.year:04d}"

    def matches(self, other: BirthDate) -> bool:
        """Equal where both are known: a bare year matches any date in that year."""
        if self.year != other.year:
            return False
        if self.exact is None or other.exact is None:
            return True
        return self.exact == other.exact


def parse_birth_date(text: str) -> BirthDate:
    s = text.strip()
    if _YEAR.fullmatch(s):
        return BirthDate(int(s))
    return BirthDate.of(parse_dmy(s))


def _json_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BirthDate):
        return value.iso()
    if isinstance(value, StrEnum):
        return value.value
    return value


@dataclass(frozen=True, slots=True)
class Credential:
    """What was presented at the desk, in CONTRACT.md's credential JSON shape.

    ``raw_fingerprint`` is a keyed hash of the raw input, set by the caller (the core has no
    key); the raw text itself is never kept on this value.
    """

    kind: CredentialKind
    id_number: str | None = None
    old_id_number: str | None = None
    card_code: str | None = None
    full_name: str | None = None
    date_of_birth: BirthDate | None = None
    sex: Sex | None = None
    address: str | None = None
    issue_date: date | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    registered_facility: str | None = None
    five_years_date: date | None = None
    benefit_digit: int | None = None
    issuing_place: str | None = None
    raw_fingerprint: str | None = None
    # Which reader brought it: camera | scanner | keyboard | manual | chip | his (None: unknown)
    reader: str | None = None
    # A card image (``tiepdon image read``, the camera): qr | text | mrz (None: not an image).
    read_from: str | None = None
    # The MRZ's document number and the chip's access key (an MRZ whose check digits held).
    document_number: str | None = None
    expiry_date: date | None = None
    access_key: AccessKey | None = None
    # Chip reads: what the chip said and proved (verify/evidence.py); JSON only at the edges.
    chip: ChipEvidence | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "chip":
                out.update(value.to_json() if value is not None else {})
            elif f.name == "access_key" and value is not None:
                out[f.name] = {"document_number": value.document_number,
                               "date_of_birth": value.date_of_birth,
                               "date_of_expiry": value.date_of_expiry}
            elif value is not None:
                out[f.name] = _json_value(value)
        return out


# Vietnam keeps UTC+7 all year (no daylight saving): the desk's day is this zone's day.
VN_TZ = timezone(timedelta(hours=7), "ICT")


def dmy(d: date) -> str:
    """How staff read dates: ``dd/MM/yyyy``."""
    return d.strftime("%d/%m/%Y")
