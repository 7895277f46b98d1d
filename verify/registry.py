"""The Vietnam Social Security gateway protocol (DOMAIN.md §5), without the transport.

Login: ``POST /api/token/take`` with ``username`` and the MD5 hex of the password; the answer's
``expires_in`` is an absolute UTC time. Card check: ``POST /api/egw/KQNhanLichSuKCB2024`` with
the token in the query string and a form body (card, name, DOB, officer). Result codes are kept
as the 3-digit strings the gateway sends, undocumented ones included.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from verify.errors import (
    DateFormatError,
    RegistryAuthError,
    RegistryProtocolError,
)
from verify.model import (
    BirthDate,
    Sex,
    is_unicode,
    normalize_text,
    parse_birth_date,
    parse_dmy,
    parse_sex,
)

LOGIN_PATH = "/api/token/take"
CHECK_PATH = "/api/egw/KQNhanLichSuKCB2024"
CODE_OK = "000"
CODE_AUTH = "401"
NEW_CARD_CODES = frozenset({"003", "004"})
_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)


def password_md5(password: str) -> str:
    """The gateway wants the MD5 hex digest of the password, not the password."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def parse_gateway_time(text: str) -> datetime:
    """``2024-08-29T08:33:08.5454145Z``: 7 fraction digits (.NET), trimmed to microseconds.

    A time without an offset is taken as UTC, which is what the gateway documents.
    """
    m = _TIME.fullmatch(text.strip())
    if not m:
        raise RegistryProtocolError("token expiry is not an ISO time")
    micro = int((m[2] or ".0")[1:7].ljust(6, "0"))
    offset = m[3] or "Z"
    try:  # an offset of +99:99, or a time that leaves the calendar once moved to UTC
        tz = UTC if offset == "Z" else datetime.strptime(offset.replace(":", ""), "%z").tzinfo
        base = datetime.fromisoformat(m[1])
        return base.replace(microsecond=micro, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise RegistryProtocolError("token expiry is not a real time") from e


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    id_token: str
    username: str
    expires_at: datetime

    def is_valid(self, now: datetime, *, margin_seconds: float = 30.0) -> bool:
        return (self.expires_at - now).total_seconds() > margin_seconds


def encode_login_form(username: str, password: str) -> dict[str, str]:
    return {"username": username, "password": password_md5(password)}


def _code(obj: dict[str, Any]) -> str:
    raw = obj.get("maKetQua")
    if isinstance(raw, bool) or raw is None:
        raise RegistryProtocolError("answer has no maKetQua")
    if isinstance(raw, int):
        raw = f"{raw:03d}"
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,4}", raw.strip()):
        raise RegistryProtocolError("maKetQua is not a number")
    return raw.strip().zfill(3)


def parse_login_answer(obj: object) -> Token:
    if not isinstance(obj, dict):
        raise RegistryProtocolError("login answer is not a JSON object")
    code = _code(obj)
    if code != "200":
        raise RegistryAuthError(f"login refused with code {code}")
    key = obj.get("APIKey")
    if not isinstance(key, dict):
        raise RegistryProtocolError("login answer has no APIKey")
    values: dict[str, str] = {}
    for field in ("access_token", "id_token", "username", "expires_in"):
        value = key.get(field)
        if not isinstance(value, str) or not value:
            raise RegistryProtocolError(f"login answer has no {field}")
        values[field] = value
    return Token(values["access_token"], values["id_token"], values["username"],
                 parse_gateway_time(values["expires_in"]))


@dataclass(frozen=True, slots=True)
class CardQuery:
    """One card check. ``card`` is a card code, a 10-digit BHXH number or a 12-digit CCCD."""

    card: str
    full_name: str
    date_of_birth: BirthDate
    officer_name: str
    officer_id: str


def encode_check_params(token: Token, password: str) -> dict[str, str]:
    return {"token": token.access_token, "id_token": token.id_token,
            "username": token.username, "password": password_md5(password)}


def encode_check_form(query: CardQuery) -> dict[str, str]:
    return {
        "maThe": query.card,
        "hoTen": query.full_name,
        "ngaySinh": query.date_of_birth.dmy(),
        "hoTenCb": query.officer_name,
        "cccdCb": query.officer_id,
    }


@dataclass(frozen=True, slots=True)
class RegistryAnswer:
    """A card-check answer. Fields the gateway left empty are None."""

    code: str
    note: str | None = None
    card_code: str | None = None
    full_name: str | None = None
    date_of_birth: BirthDate | None = None
    sex: Sex | None = None
    address: str | None = None
    registered_facility: str | None = None
    agency: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    area_code: str | None = None
    five_years_date: date | None = None
    bhxh_number: str | None = None
    old_card_code: str | None = None
    new_card_code: str | None = None
    new_valid_from: date | None = None
    new_valid_to: date | None = None
    new_registered_facility: str | None = None
    new_registered_facility_name: str | None = None


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RegistryProtocolError(f"{key} is not text")
    if not is_unicode(value):
        raise RegistryProtocolError(f"{key} is not valid Unicode")
    return normalize_text(value) or None


def _day(obj: dict[str, Any], key: str) -> date | None:
    s = _text(obj, key)
    if s is None or s == "-":
        return None
    try:
        return parse_dmy(s)
    except DateFormatError as e:
        raise RegistryProtocolError(f"{key} is not a date") from e


def parse_check_answer(obj: object) -> RegistryAnswer:
    """Strict on shape (a broken answer must not look like a decision), tolerant on blanks."""
    if not isinstance(obj, dict):
        raise RegistryProtocolError("card-check answer is not a JSON object")
    code = _code(obj)
    dob_text = _text(obj, "ngaySinh")
    try:
        dob = parse_birth_date(dob_text) if dob_text else None
    except DateFormatError as e:
        raise RegistryProtocolError("ngaySinh is not a date") from e
    sex_text = _text(obj, "gioiTinh")
    area = _text(obj, "maKV")
    if area is not None and area.upper() not in {"K1", "K2", "K3"}:
        raise RegistryProtocolError("maKV is not K1/K2/K3")
    return RegistryAnswer(
        code=code,
        note=_text(obj, "ghiChu"),
        card_code=_text(obj, "maThe"),
        full_name=_text(obj, "hoTen"),
        date_of_birth=dob,
        sex=parse_sex(sex_text) if sex_text else None,
        address=_text(obj, "diaChi"),
        registered_facility=_text(obj, "maDKBD"),
        agency=_text(obj, "cqBHXH"),
        valid_from=_day(obj, "gtTheTu"),
        valid_to=_day(obj, "gtTheDen"),
        area_code=area.upper() if area else None,
        five_years_date=_day(obj, "ngayDu5Nam"),
        bhxh_number=_text(obj, "maSoBHXH"),
        old_card_code=_text(obj, "maTheCu"),
        new_card_code=_text(obj, "maTheMoi"),
        new_valid_from=_day(obj, "gtTheTuMoi"),
        new_valid_to=_day(obj, "gtTheDenMoi"),
        new_registered_facility=_text(obj, "maDKBDMoi"),
        new_registered_facility_name=_text(obj, "tenDKBDMoi"),
    )


def answer_to_json(a: RegistryAnswer) -> dict[str, Any]:
    """A registry answer as plain JSON (the journal keeps answers to decide again offline)."""
    out: dict[str, Any] = {}
    for name in a.__dataclass_fields__:
        value = getattr(a, name)
        if isinstance(value, BirthDate):
            value = value.iso()
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Sex):
            value = value.value
        out[name] = value
    return out


def answer_from_json(doc: dict[str, Any]) -> RegistryAnswer:
    def day(key: str) -> date | None:
        v = doc.get(key)
        return date.fromisoformat(v) if v else None

    dob = doc.get("date_of_birth")
    birth = None
    if dob:
        birth = (BirthDate.of(date.fromisoformat(dob)) if len(dob) == 10
                 else BirthDate(int(dob)))
    sex = doc.get("sex")
    values: dict[str, Any] = {k: doc.get(k) for k in RegistryAnswer.__dataclass_fields__}
    values.update({
        "date_of_birth": birth, "sex": Sex(sex) if sex else None,
        "valid_from": day("valid_from"), "valid_to": day("valid_to"),
        "five_years_date": day("five_years_date"), "new_valid_from": day("new_valid_from"),
        "new_valid_to": day("new_valid_to"),
    })
    return RegistryAnswer(**values)
