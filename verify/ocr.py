"""What a card image said, turned into a credential draft — pure (issue 24, "Trust").

``readers/ocr`` hands over raw strings; this module decides which to keep. Nothing read from
print decides alone: the draft fills the manual-entry form for staff to confirm, except the
MRZ's access key, which the check digits already proved. Every value is checked for what it
can be checked for and left empty when it fails — never guessed or repaired:

- the 12-digit ID: province code in the table, the century/sex digit, and agreement with the
  printed birth year and sex (DOMAIN.md §8: a number that contradicts them is wrong — and as
  either side may be the misread one, both are dropped);
- the BHYT card code: its shape, the object code in the benefit table, the province code;
- dates: they exist, a birth date is not in the future nor over 115 years ago, an expiry is
  after the birth.
"""

from __future__ import annotations

import re
from datetime import date

from readers.emrtd.mrz import AccessKey, Td1, yymmdd_to_date
from readers.errors import MrzError
from readers.ocr.layouts import CardModel
from readers.ocr.read import CardText
from verify.errors import CardCodeError, DateFormatError
from verify.ids import CardCodeKind, CitizenId, parse_card_code
from verify.model import BirthDate, Credential, CredentialKind, Sex, normalize_text, parse_dmy
from verify.model import parse_sex as _parse_sex
from verify.tables import Tables

_FACILITY = re.compile(r"([0-9]{2})\s*-?\s*([A-Z0-9]{3})\s*-?\s*$")
MIN_BIRTH_YEAR = 1900
# Older than this a birth date read from print is taken for a misread (1962 read as 1902): the
# field is left for staff to type, which costs one patient in millions a few keys.
MAX_AGE_YEARS = 115
_BHYT_MODELS = {CardModel.BHYT, CardModel.VSSID_BHYT}


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return parse_dmy(text)
    except DateFormatError:
        return None


def _birth(text: str | None, today: date) -> date | None:
    return _lived(_date(text), today)


def _lived(d: date | None, today: date) -> date | None:
    """A birth date that has come and is not over 115 years ago, else None."""
    oldest = max(MIN_BIRTH_YEAR, today.year - MAX_AGE_YEARS)
    return d if d is not None and d.year >= oldest and d <= today else None


def is_plausible_id(number: str, provinces: dict[str, str], *, today: date) -> bool:
    """A 12-digit ID whose structure holds: ``0`` + a province code of the table, a
    century/sex digit for a birth year that has come (DOMAIN.md §2)."""
    if len(number) != 12 or not (number.isascii() and number.isdigit()):
        return False
    cid = CitizenId(number)
    return (cid.province_code[0] == "0" and cid.province_code[1:] in provinces
            and MIN_BIRTH_YEAR <= cid.birth_year <= today.year)


def _name(text: str | None) -> str | None:
    s = normalize_text(text or "")
    return s if len(s.split()) >= 2 else None


def credential_from_text(card: CardText, tables: Tables, *, today: date) -> Credential | None:
    """The draft from a card front or back, or None when nothing worth showing survived."""
    if card.td1 is not None:
        return credential_from_mrz(card.td1, tables, today=today)
    f = card.fields
    dob = _birth(f.get("date_of_birth"), today)
    sex = _parse_sex(f.get("sex", ""))
    name = _name(f.get("full_name"))
    if card.model in _BHYT_MODELS:
        code = _card_code(f.get("card_code"), tables, today=today)
        valid_from = _date(f.get("valid_from"))
        out = Credential(kind=CredentialKind.BHYT_TEXT, card_code=code, full_name=name,
                         date_of_birth=BirthDate.of(dob) if dob else None, sex=sex,
                         valid_from=valid_from if valid_from and valid_from <= today else None,
                         registered_facility=_facility(f.get("registered_facility"), tables),
                         read_from="text")
        return out if code or name else None
    id12: str | None = f.get("id_number")
    old: str | None = None
    if card.model is CardModel.CMND and id12 and len(id12) == 9:
        id12, old = None, id12  # the 9-digit CMND number: its shape is all there is to check
    if id12 is not None:
        id12, dob, sex = _agree(id12, dob, sex, tables, today=today)
    expiry = _date(f.get("expiry_date"))
    if expiry is not None and dob is not None and expiry <= dob:
        expiry = None
    if not (id12 or old or name):
        return None
    return Credential(kind=CredentialKind.CCCD_TEXT, id_number=id12, old_id_number=old,
                      full_name=name, date_of_birth=BirthDate.of(dob) if dob else None,
                      sex=sex, expiry_date=expiry, read_from="text")


def _agree(id12: str, dob: date | None, sex: Sex | None, tables: Tables, *, today: date
           ) -> tuple[str | None, date | None, Sex | None]:
    """The ID with the birth date and sex, each pair that disagrees dropped on both sides."""
    if not is_plausible_id(id12, tables.provinces, today=today):
        return None, dob, sex
    cid = CitizenId(id12)
    keep = True
    if dob is not None and dob.year != cid.birth_year:
        keep, dob = False, None
    if sex is not None and sex is not cid.sex:
        keep, sex = False, None
    return (id12 if keep else None), dob, sex


def _card_code(text: str | None, tables: Tables, *, today: date) -> str | None:
    if not text:
        return None
    try:
        code = parse_card_code(text)
    except CardCodeError:
        return None
    if code.kind is CardCodeKind.BHXH:
        return code.code if code.code[:2] in tables.provinces else None
    if code.kind is CardCodeKind.CLASSIC and code.object_code and code.bhxh_number and (
            tables.rules.level_for(code.object_code, today) is not None
            and code.province in tables.provinces):
        return code.code
    return None


def _facility(text: str | None, tables: Tables) -> str | None:
    """The registered facility's code (``PPFFF``) at the end of the printed line."""
    m = _FACILITY.search((text or "").upper())
    return m[1] + m[2] if m and m[1] in tables.provinces else None


def credential_from_mrz(td1: Td1, tables: Tables, *, today: date) -> Credential | None:
    """An MRZ whose check digits held (``readers.ocr.read_td1``): the access key as read
    (none when a date is no calendar day — check digits hold on ``900231`` too); the 12-digit
    ID of the optional data when its own check digit holds, it ends in the document number
    and its structure holds — its century digit also says the birth century; a birth date
    only if it has come and is not over 115 years ago. None when nothing survived."""
    id12 = td1.id_number
    if id12 is not None and not (id12[3:] == td1.document_number
                                 and is_plausible_id(id12, tables.provinces, today=today)):
        id12 = None
    sex = {"M": Sex.MALE, "F": Sex.FEMALE}.get(td1.sex)
    dob: date | None = None
    if id12 is not None:
        cid = CitizenId(id12)
        dob = yymmdd_to_date(td1.date_of_birth, pivot_year=cid.birth_year)
        if dob is None or dob.year != cid.birth_year or (sex is not None and sex is not cid.sex):
            id12, dob = None, None
    if dob is None:
        dob = yymmdd_to_date(td1.date_of_birth, pivot_year=today.year)
    dob = _lived(dob, today)
    expiry = yymmdd_to_date(td1.date_of_expiry, pivot_year=2099)
    try:
        key: AccessKey | None = td1.access_key
    except MrzError:  # AccessKeyFormatError among them: a date that is no day
        key = None
    if key is None and id12 is None and dob is None:
        return None
    return Credential(kind=CredentialKind.CCCD_MRZ, id_number=id12,
                      document_number=td1.document_number,
                      date_of_birth=BirthDate.of(dob) if dob else None, sex=sex,
                      expiry_date=expiry, access_key=key, read_from="mrz")
