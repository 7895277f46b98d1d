"""Credentials in: what staff typed, what the chip said, and the chip's access keys — pure.

Every way a patient's identity reaches the terminal ends here as a :class:`Credential` (or, for
the chip, as the access keys to open it). Nothing here reads the clock: ``today`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from readers.emrtd.access import document_number_of, keys_from_cccd
from readers.emrtd.chip import ChipIdentity, ChipRead
from readers.emrtd.mrz import AccessKey, CanKey, access_key_from_line2, yymmdd_to_date
from verify.errors import (
    DateFormatError,
    FieldTooLongError,
    IdNumberError,
    MissingFieldError,
    MissingNumberError,
    QrFormatError,
)
from verify.evidence import ChipDetails, MrzSummary, evidence_of
from verify.ids import CardCodeKind, parse_card_code
from verify.model import (
    BirthDate,
    Credential,
    CredentialKind,
    check_unicode,
    is_digits,
    normalize_text,
    parse_birth_date,
    parse_dmy,
    parse_sex,
)
from verify.qr import parse_cccd_qr

# The longest a typed field may be, for every path that takes one (the HTTP API's request
# model, ``tiepdon check``, ``tiepdon audit find``): beyond it, refused before any lookup.
MAX_CODE_CHARS = 64
MAX_NAME_CHARS = 200
MAX_DATE_CHARS = 32


def manual_credential(*, card_code: str | None, id_number: str | None, full_name: str | None,
                      date_of_birth: str | None) -> Credential:
    """Numbers typed by staff (or sent by the HIS). Raises an InputFormatError subclass."""
    for value, most, what in ((card_code, MAX_CODE_CHARS, "card code"),
                              (id_number, MAX_CODE_CHARS, "ID number"),
                              (full_name, MAX_NAME_CHARS, "full name"),
                              (date_of_birth, MAX_DATE_CHARS, "date of birth")):
        if value is not None and len(value) > most:
            raise FieldTooLongError(f"{what} longer than {most} characters")
    code = (card_code or "").strip()
    ident = (id_number or "").strip()
    if not code and not ident:
        raise MissingNumberError("card code or ID number required")
    id12: str | None = None
    if ident:
        if not (len(ident) == 12 and is_digits(ident)):
            raise IdNumberError("ID number is not 12 digits")
        id12 = ident
    card: str | None = None
    if code:
        parsed = parse_card_code(code)
        if parsed.kind is CardCodeKind.CCCD:
            id12 = id12 or parsed.code
        else:
            card = parsed.code
    name = normalize_text(check_unicode(full_name or "", "full name")) or None
    dob = parse_birth_date(date_of_birth) if date_of_birth and date_of_birth.strip() else None
    return Credential(kind=CredentialKind.MANUAL, id_number=id12, card_code=card,
                      full_name=name, date_of_birth=dob)


# -- the chip ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChipKeyInput:
    """What the desk has to open a chip: a CCCD QR, the CAN, typed MRZ data, or MRZ line 2.
    ``document_number`` may be the 12-digit ID (its last 9 digits are the MRZ number)."""

    qr: str | None = None
    can: str | None = None
    document_number: str | None = None
    date_of_birth: str | None = None
    date_of_expiry: str | None = None
    mrz_line2: str | None = None


def chip_keys(given: ChipKeyInput) -> list[AccessKey | CanKey]:
    """The access keys to try, most likely first. Raises InputFormatError / MrzError with a
    staff sentence when no key can be built. The one place keys are built from desk input."""
    if given.can and given.can.strip():
        return [CanKey(given.can.strip())]
    if given.qr:
        return chip_keys_from_qr(parse_cccd_qr(given.qr))
    doc = document_number_of((given.document_number or "").strip())
    if given.mrz_line2:
        return [access_key_from_line2(given.mrz_line2, doc)]
    if not (doc and given.date_of_birth and given.date_of_expiry):
        raise MissingFieldError("the chip needs a QR, the CAN, or the MRZ number and dates")
    return [AccessKey(doc, given.date_of_birth.strip(), given.date_of_expiry.strip())]


def chip_keys_from_qr(credential: Credential) -> list[AccessKey | CanKey]:
    """A scanned CCCD QR carries the chip's keys (ID, DOB, issue date)."""
    dob = credential.date_of_birth.exact if credential.date_of_birth else None
    if (credential.kind is not CredentialKind.CCCD_QR or dob is None
            or credential.issue_date is None or credential.id_number is None):
        raise QrFormatError("the QR lacks the ID, DOB or issue date the chip key needs")
    return keys_from_cccd(credential.id_number, dob, credential.issue_date)


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return parse_dmy(text)
    except DateFormatError:
        return None


def chip_details(identity: ChipIdentity) -> ChipDetails:
    """DG13's fields beyond the credential's own, and the MRZ summary."""
    d, mrz = identity.dg13, identity.mrz
    return ChipDetails(
        mrz=MrzSummary(mrz.document_number, mrz.date_of_birth, mrz.date_of_expiry, mrz.sex,
                       mrz.nationality),
        access=identity.access, nationality=d.get(5), ethnicity=d.get(6), religion=d.get(7),
        place_of_origin=d.get(8), place_of_residence=d.get(9), identifying_features=d.get(10),
        father_name=d.father_name, mother_name=d.mother_name, spouse_name=d.spouse_name,
        expiry_date=_day(d.get(12)))  # "Không thời hạn" and other text: no expiry


def chip_credential(identity: ChipIdentity, *, read: ChipRead | None, fingerprint: str,
                    today: date) -> Credential:
    """CONTRACT.md's chip credential from what the chip said (DG13 first, the MRZ as backup),
    carrying its :class:`ChipEvidence` — at identity time (``read`` None) or after the whole
    read. ``today`` chooses the century of a two-digit MRZ birth year."""
    d, mrz = identity.dg13, identity.mrz
    dob = _day(d.get(3))
    if dob is None:
        dob = yymmdd_to_date(mrz.date_of_birth, pivot_year=today.year)
    sex = parse_sex(d.get(4) or "") or parse_sex({"M": "male", "F": "female"}.get(mrz.sex, ""))
    return Credential(
        kind=CredentialKind.CHIP,
        id_number=d.get(1) or mrz.id_number,
        old_id_number=d.get(15) or None,
        full_name=d.get(2),
        date_of_birth=BirthDate.of(dob) if dob else None,
        sex=sex,
        address=d.get(9),
        issue_date=_day(d.get(11)),
        raw_fingerprint=fingerprint,
        chip=evidence_of(identity, chip_details(identity), read),
    )
