"""The HN212-class desk reader's Socket.IO messages, built from what the terminal read and
decided (pure: no I/O, the clock passed in).

The vendor service pushes every message on one event, ``/event``, told apart by ``id``:
1 a card was placed, 2 the card's text, 3 an error, 4 the photo and raw data groups (base64),
5 the authentication results, 7 the answer to an AA challenge (``/get_aa``); it answers
``/info`` on connect and re-reads the card on ``/input_data``. Field names, the ``ddmmyyyy``
dates and the misspelt ``aa_challege`` are the vendor's (its public integration document, and
HIS clients written against it in C# and JavaScript). HIS code reads every value as a string
(``JsonElement.GetString`` throws on a number), so absent values are ``""``, never null.

What ``tiepdon`` adds are extra keys old clients ignore: ``eligibility`` (the desk's decision)
in ids 2 and 5, ``code`` in id 3, and the verdict words in id 5. Fail closed: id 5's ``CA`` is
``"1"`` and ``AA.aa_signature`` is filled only when that check passed here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from readers.emrtd.access import can_of
from readers.emrtd.lds import parse_sod
from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import TlvError
from verify.credentials import ChipKeyInput, chip_keys
from verify.errors import HisRequestError
from verify.his import card_fields
from verify.model import BirthDate, Credential, CredentialKind, Sex, is_digits, sex_vi

EVENT = "/event"
INFO = "/info"
INPUT_DATA = "/input_data"
GET_AA = "/get_aa"
PLACED, TEXT, ERROR, RAW, AUTH, AA_ANSWER = 1, 2, 3, 4, 5, 7
RAW_FILES = ("dg1", "dg2", "dg13", "dg14", "dg15", "sod")
NO_EXPIRY_YEAR = "2099"  # the vendor's ``ddmm2099`` for cards without an expiry date


def b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode("ascii") if data else ""


def ddmmyyyy(d: date | None) -> str:
    return d.strftime("%d%m%Y") if d else ""


def _birth(b: BirthDate | None) -> str:
    if b is None:
        return ""
    return ddmmyyyy(b.exact) if b.exact else f"{b.year:04d}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def cccd_qr_text(c: Credential) -> str:
    """The CCCD QR's seven fields (ID, old ID, name, birth, sex, residence, issue date), from a
    CCCD QR or rebuilt from a chip's DG13 as the QR path has them: exactly what id 2's other
    fields already say, nothing more — HIS code that splits ``qr`` finds the same values.
    Other credentials give ``""`` (a BHYT QR carries more than the HIS asked for)."""
    if c.kind not in (CredentialKind.CCCD_QR, CredentialKind.CHIP):
        return ""
    sex = sex_vi(c.sex) if c.sex in (Sex.MALE, Sex.FEMALE) else ""
    return "|".join([c.id_number or "", c.old_id_number or "", c.full_name or "",
                     _birth(c.date_of_birth), sex, c.address or "", ddmmyyyy(c.issue_date)])


def placed() -> dict[str, Any]:
    return {"id": PLACED, "message": "new card!"}  # the vendor's words


def _strict(message: dict[str, Any], strict: bool) -> dict[str, Any]:
    """``[his] hn212_strict``: every value inside ``data`` a flat string (clients that read
    each member as one); the decision object moves out of ``data``, beside it."""
    if strict:
        message["eligibility"] = message["data"].pop("eligibility")
    return message


def text_message(c: Credential, eligibility: Mapping[str, Any] | None, *,
                 strict: bool = False) -> dict[str, Any]:
    """id 2: the fields the credential has; a QR or typed check has no parents or religion."""
    f = card_fields(c, ddmmyyyy)
    data = {
        "idCode": f["id"], "oldIdCode": f["old_id"], "personName": f["name"],
        "dateOfBirth": f["birth"], "gender": f["sex"], "nationality": f["nationality"],
        "race": f["ethnicity"], "religion": f["religion"], "originPlace": f["origin"],
        "residencePlace": f["residence"], "personalIdentification": f["features"],
        "issueDate": f["issued"], "expiryDate": f["expires"], "fatherName": f["father"],
        "motherName": f["mother"], "wifeName": f["spouse"],
        "qr": cccd_qr_text(c),
        # Added by tiepdon: a BHYT card code (QR, typed) and the decision — as an object, and
        # flat strings for clients that read every value as one. A chip's id 2 comes when the
        # identity is read, before AA/CA and the photo: its decision is provisional ("0") and
        # id 5 carries the final one.
        "cardCode": c.card_code or "",
        "eligibilityStatus": str((eligibility or {}).get("status") or ""),
        "eligibilityFinal": "0" if c.kind is CredentialKind.CHIP else "1",
        "eligibility": dict(eligibility) if eligibility is not None else {},
    }
    return _strict({"id": TEXT, "message": "read card successfully!", "data": data}, strict)


def error_message(code: str, vi: str) -> dict[str, Any]:
    return {"id": ERROR, "message": vi, "code": code}


def raw_message(files: Mapping[str, bytes], photo: bytes | None) -> dict[str, Any]:
    """id 4: the portrait as read (JPEG or JPEG 2000) and the raw files, base64."""
    data = {"img_data": b64(photo)}
    data.update({name: b64(files.get(name)) for name in RAW_FILES})
    return {"id": RAW, "message": "Read raw data successfully!", "data": data}


@dataclass(frozen=True, slots=True)
class ChipChecks:
    """What the read proved, in CONTRACT.md's words (passed | failed | not_supported)."""

    passive_auth: str      # authentic | failed | not_verified …
    active_auth: str
    chip_auth: str
    verdict: str           # verified | copy_suspected | not_verified | incomplete
    aa_signature: bytes | None = None


def _pa_fields(files: Mapping[str, bytes]) -> dict[str, str]:
    sod_raw = files.get("sod")
    out = {f"hash_{name}": "" for name in RAW_FILES[:-1]}
    out.update(cert="", sod=b64(sod_raw))
    if not sod_raw:
        return out
    try:
        sod = parse_sod(sod_raw)
        certs = sod.signed_data["certificates"]
        if len(certs):
            out["cert"] = b64(certs[0].chosen.dump())
    except (TlvError, ValueError, KeyError, TypeError):
        return out  # the read already failed passive authentication on it
    for number, digest in sod.hashes.items():
        if f"hash_dg{number}" in out:
            out[f"hash_dg{number}"] = b64(digest)
    return out


def auth_message(checks: ChipChecks, files: Mapping[str, bytes],
                 eligibility: Mapping[str, Any] | None, *, strict: bool = False
                 ) -> dict[str, Any]:
    """id 5. ``CA`` is "1" only for a Chip Authentication that passed, "0" for one that failed
    and "" when the chip offers none; the AA signature only when it verified."""
    ca = {"passed": "1", "failed": "0"}.get(checks.chip_auth, "")
    aa_ok = checks.active_auth == "passed"
    data = {
        "CA": ca,
        "AA": {"aa_signature": b64(checks.aa_signature) if aa_ok else "",
               "status": checks.active_auth},
        "PA": {**_pa_fields(files), "status": checks.passive_auth},
        "verdict": checks.verdict,
        "chip_auth": checks.chip_auth,
        "eligibilityStatus": str((eligibility or {}).get("status") or ""),
        "eligibility": dict(eligibility) if eligibility is not None else {},
    }
    return _strict({"id": AUTH, "data": data}, strict)


def aa_answer(signature: bytes, challenge: bytes) -> dict[str, Any]:
    return {"id": AA_ANSWER, "data": {"aa_signature": b64(signature),
                                      "aa_challege": b64(challenge)}}


def info(version: str, reader: str, device: str, now: datetime) -> dict[str, str]:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return {"version": version, "serial_nfc": reader, "serial_device": device, "date": stamp}


def _yymmdd(text: str, what: str) -> str:
    if not (isinstance(text, str) and len(text) == 8 and is_digits(text)):
        raise HisRequestError(f"{what} is not ddmmyyyy")
    try:
        date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        raise HisRequestError(f"{what} is not a date") from None
    return text[6:8] + text[2:4] + text[0:2]


def input_keys(data: Any) -> list[AccessKey | CanKey]:
    """``/input_data {idCode, dateOfBirth, expiryDate, clientId}`` as chip keys: PACE with the
    CAN (the ID's last 6 digits) first, then BAC from the typed dates (``ddmmyyyy``; a card
    without expiry sends ``ddmm2099``, which is what its MRZ says). Raises HisRequestError
    with a staff sentence."""
    if not isinstance(data, Mapping):
        raise HisRequestError("/input_data needs an object")
    id_code = data.get("idCode")
    if not (isinstance(id_code, str) and len(id_code) == 12 and is_digits(id_code)):
        raise HisRequestError("idCode is not a 12-digit ID number")
    bac = chip_keys(ChipKeyInput(
        document_number=id_code,
        date_of_birth=_yymmdd(data.get("dateOfBirth", ""), "dateOfBirth"),
        date_of_expiry=_yymmdd(data.get("expiryDate", ""), "expiryDate")))
    return [CanKey(can_of(id_code)), *bac]


def aa_challenge(data: Any) -> bytes:
    """``/get_aa {clientId, challenge}``: the challenge is 8 bytes in base64."""
    challenge = data.get("challenge") if isinstance(data, Mapping) else None
    try:
        raw = base64.b64decode(challenge, validate=True) if isinstance(challenge, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise HisRequestError("challenge is not 8 bytes in base64")
    return raw
