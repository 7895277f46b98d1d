"""QR payload parsers: the CCCD / căn cước QR and the BHYT card QR (DOMAIN.md §3).

Lenient where real cards vary (hex case, spaces, trailing empty fields, a missing ``$``,
scanner prefixes), strict where it matters (card-code shape, ID shape, dates that exist).
Errors never quote the payload: it is personal data.
"""

from __future__ import annotations

import binascii
import re
from datetime import date

from verify.errors import CardCodeError, DateFormatError, IdNumberError, QrFormatError
from verify.ids import CardCodeKind, normalize_facility, parse_card_code, parse_citizen_id
from verify.model import (
    BirthDate,
    Credential,
    CredentialKind,
    is_digits,
    normalize_text,
    parse_birth_date,
    parse_dmy,
    parse_sex,
)

# The largest QR code (version 40-L) holds 2953 bytes; anything much longer is not a QR.
MAX_PAYLOAD_CHARS = 4096
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# ISO/IEC 15424 symbology identifier some scanners prepend (]Q1 = QR Code, model 2).
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9]")
_HEX = re.compile(r"[0-9A-Fa-f\s]+")
_OLD_ID = re.compile(r"[0-9]{9}|[0-9]{12}")
_EMPTY = {"", "-"}


def _clean(text: str) -> str:
    if len(text) > MAX_PAYLOAD_CHARS:
        raise QrFormatError(f"payload longer than {MAX_PAYLOAD_CHARS} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QrFormatError("payload is not valid Unicode (a lone surrogate)") from None
    s = text.lstrip("\ufeff").strip("\r\n\t ")
    s = _AIM_PREFIX.sub("", s)
    if _CONTROL.search(s) or "\n" in s or "\t" in s:
        raise QrFormatError("payload contains control characters")
    if not s:
        raise QrFormatError("empty payload")
    return s


def _hex_text(field: str, what: str) -> str:
    """Decode a hex-encoded UTF-8 field (BHYT QR names and addresses)."""
    compact = "".join(field.split())
    if not compact or not _HEX.fullmatch(compact) or len(compact) % 2:
        raise QrFormatError(f"{what}: not hex-encoded text")
    try:
        text = binascii.unhexlify(compact).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise QrFormatError(f"{what}: hex does not decode to UTF-8") from e
    if _CONTROL.search(text):
        raise QrFormatError(f"{what}: control characters in decoded text")
    return normalize_text(text)


def _field_date(field: str, what: str) -> BirthDate:
    try:
        return parse_birth_date(field)
    except DateFormatError as e:
        raise QrFormatError(f"{what}: {e.detail}") from e


def _optional_day(field: str, what: str) -> date | None:
    s = field.strip()
    if s in _EMPTY:
        return None
    try:
        return parse_dmy(s)
    except DateFormatError as e:
        raise QrFormatError(f"{what}: {e.detail}") from e


def parse_cccd_qr(text: str) -> Credential:
    """``id12|old_id|full name|ddMMyyyy|Nam/Nữ|address|ddMMyyyy`` (+ trailing empty fields)."""
    s = _clean(text)
    parts = s.split("|")
    if len(parts) < 7:
        raise QrFormatError(f"CCCD QR has {len(parts)} fields, expected 7")
    try:
        cid = parse_citizen_id(parts[0])
    except IdNumberError as e:
        raise QrFormatError("CCCD QR: ID is not 12 digits") from e
    old_id = parts[1].strip()
    if old_id and not _OLD_ID.fullmatch(old_id):
        raise QrFormatError("CCCD QR: old ID number is not 9 or 12 digits")
    name = normalize_text(parts[2])
    if not name:
        raise QrFormatError("CCCD QR: empty name")
    dob = _field_date(parts[3], "CCCD QR date of birth")
    if dob.exact is None:
        raise QrFormatError("CCCD QR date of birth: not a full date")
    sex = parse_sex(parts[4])
    if sex is None:
        raise QrFormatError("CCCD QR: sex is neither Nam nor Nữ")
    issue = _optional_day(parts[6], "CCCD QR issue date")
    return Credential(
        kind=CredentialKind.CCCD_QR,
        id_number=cid.number,
        old_id_number=old_id or None,
        full_name=name,
        date_of_birth=dob,
        sex=sex,
        address=normalize_text(parts[5]) or None,
        issue_date=issue,
    )


def parse_bhyt_qr(text: str) -> Credential:
    """Fields 0–3 are firm; later positions follow DOMAIN.md §3 and may be absent."""
    s = _clean(text)
    if s.endswith("$"):
        s = s[:-1]
    parts = s.split("|")
    if parts and parts[-1].strip() == "":
        parts.pop()
    if len(parts) < 4:
        raise QrFormatError(f"BHYT QR has {len(parts)} fields, expected at least 4")
    parts += [""] * (16 - len(parts))
    try:
        card = parse_card_code(parts[0])
    except CardCodeError as e:
        raise QrFormatError("BHYT QR: card code has the wrong shape") from e
    if card.kind is CardCodeKind.CCCD:
        raise QrFormatError("BHYT QR: a 12-digit number is not a card code")
    name = _hex_text(parts[1], "BHYT QR name")
    dob = _field_date(parts[2], "BHYT QR date of birth")
    sex = parse_sex(parts[3])
    if sex is None:
        raise QrFormatError("BHYT QR: sex is neither 1 nor 2")
    address = None if parts[4].strip() in _EMPTY else _hex_text(parts[4], "BHYT QR address")
    facility = normalize_facility(parts[5]) if parts[5].strip() not in _EMPTY else None
    if facility is not None and not re.fullmatch(r"[A-Z0-9]{5}", facility):
        raise QrFormatError("BHYT QR: registered facility is not 'PP - FFF'")
    benefit = parts[11].strip()
    place = parts[15].strip()
    return Credential(
        kind=CredentialKind.BHYT_QR,
        card_code=card.code,
        full_name=name,
        date_of_birth=dob,
        sex=sex,
        address=address,
        registered_facility=facility,
        valid_from=_optional_day(parts[6], "BHYT QR valid-from"),
        valid_to=_optional_day(parts[7], "BHYT QR valid-to"),
        issue_date=_optional_day(parts[8], "BHYT QR issue date"),
        benefit_digit=int(benefit) if re.fullmatch(r"[1-5]", benefit) else None,
        five_years_date=_optional_day(parts[12], "BHYT QR five-years date"),
        issuing_place=None if place in _EMPTY else _hex_text(place, "BHYT QR issuing place"),
    )


def parse_qr(text: str) -> Credential:
    """Either QR kind, told apart by shape: a BHYT payload ends with ``$`` or hex-encodes the
    name in field 1; a CCCD payload starts with the 12-digit ID."""
    s = _clean(text)
    parts = s.split("|")
    if s.endswith("$"):
        return parse_bhyt_qr(s)
    if len(parts) > 1 and len(parts[0].strip()) == 12 and is_digits(parts[0].strip()):
        return parse_cccd_qr(s)
    if len(parts) >= 4 and _HEX.fullmatch(parts[1]) and len(parts[1]) >= 4:
        return parse_bhyt_qr(s)
    raise QrFormatError("neither a CCCD QR nor a BHYT QR")


def _hex(text: str) -> str:
    return text.encode("utf-8").hex()


def encode_cccd_qr(credential: Credential) -> str:
    """The CCCD QR text for a credential (tests, the demo card, the QR benchmark set)."""
    c = credential
    if not (c.id_number and c.full_name and c.date_of_birth and c.date_of_birth.exact
            and c.sex):
        raise QrFormatError("a CCCD QR needs ID, name, full DOB and sex")
    return "|".join([
        c.id_number, c.old_id_number or "", c.full_name,
        c.date_of_birth.exact.strftime("%d%m%Y"), "Nam" if c.sex.value == "male" else "Nữ",
        c.address or "", c.issue_date.strftime("%d%m%Y") if c.issue_date else "",
    ])


def encode_bhyt_qr(credential: Credential, *, internal_number: str = "-",
                   check_code: str = "-") -> str:
    """The BHYT QR text (new-model field order, DOMAIN.md §3) for a credential."""
    c = credential
    if not (c.card_code and c.full_name and c.date_of_birth and c.sex):
        raise QrFormatError("a BHYT QR needs card code, name, DOB and sex")

    def day(d: date | None) -> str:
        return d.strftime("%d/%m/%Y") if d else "-"

    facility = f"{c.registered_facility[:2]} - {c.registered_facility[2:]}" if (
        c.registered_facility) else "-"
    fields = [
        c.card_code, _hex(c.full_name), c.date_of_birth.dmy(),
        "1" if c.sex.value == "male" else "2", _hex(c.address) if c.address else "-",
        facility, day(c.valid_from), day(c.valid_to), day(c.issue_date), internal_number, "-",
        str(c.benefit_digit) if c.benefit_digit else "-",
        " " + day(c.five_years_date) if c.five_years_date else "-", check_code,
    ]
    if c.issuing_place:
        fields += ["4", _hex(c.issuing_place)]
    return "|".join(fields) + "|$"
