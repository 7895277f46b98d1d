"""Visit history at reception (lịch sử KCB): the gateway's ``POST /api/egw/Lskcb2025``
(CV 2746/BHXH-CNTT; DOMAIN.md §7) — the card check's credentials in the query string and its
form body — answers ``dsLichSuKCB2025``, a list of visits with ``maHoSo, maCSKCB, ngayVao,
ngayRa`` (``yyyyMMddHHmm``), ``lyDoVV`` and the diagnosis and outcome (``tenBenh, tinhTrang,
kqDieuTri``).

Reception needs when and where, and whether the patient was already seen today — never what
for. The diagnosis and outcome are dropped here, at the parse, so no later step can show,
keep or send them. Pure: "today" is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from verify.errors import RegistryProtocolError
from verify.registry import CODE_OK, _code, _text

HISTORY_PATH = "/api/egw/Lskcb2025"
MAX_VISITS = 10  # the newest shown; the gateway's list can be long
# lyDoVV (lý do vào viện, as in the QĐ 130 tables): how the visit came to this facility.
REASONS = {"1": ("Đúng tuyến", "Referred / registered facility"),
           "2": ("Cấp cứu", "Emergency"),
           "3": ("Trái tuyến", "Out of network"),
           "4": ("Thông tuyến", "Network-wide access")}
VISIT_TODAY = {"code": "visit_today",
               "vi": "Người bệnh đã có lượt khám hôm nay — kiểm tra trước khi tiếp đón lượt mới.",
               "en": "The patient already has a visit today — check before registering another."}


@dataclass(frozen=True, slots=True)
class Visit:
    facility: str | None
    admitted: datetime | None
    discharged: datetime | None
    reason: str | None  # lyDoVV

    def to_json(self) -> dict[str, Any]:
        vi, en = REASONS.get(self.reason or "", (None, None))
        return {"facility": self.facility,
                "admitted": self.admitted.isoformat() if self.admitted else None,
                "discharged": self.discharged.isoformat() if self.discharged else None,
                "reason": self.reason, "reason_vi": vi, "reason_en": en}


def _stamp(obj: dict[str, Any], key: str) -> datetime | None:
    s = _text(obj, key)
    if s is None:
        return None
    if not (len(s) in (8, 12) and s.isascii() and s.isdigit()):
        raise RegistryProtocolError(f"{key} is not yyyyMMddHHmm")
    try:
        return datetime.strptime(s, "%Y%m%d%H%M" if len(s) == 12 else "%Y%m%d")
    except ValueError:
        raise RegistryProtocolError(f"{key} is not a time") from None


def parse_history_answer(obj: object) -> tuple[str, list[Visit]]:
    """The result code and the visits, newest first (at most MAX_VISITS). A list that is null
    is no visit, not an error; anything else malformed raises RegistryProtocolError."""
    if not isinstance(obj, dict):
        raise RegistryProtocolError("history answer is not a JSON object")
    code = _code(obj)
    raw = obj.get("dsLichSuKCB2025")
    if code != CODE_OK or raw is None:
        return code, []
    if not isinstance(raw, list):
        raise RegistryProtocolError("dsLichSuKCB2025 is not a list")
    visits = []
    for item in raw:
        if not isinstance(item, dict):
            raise RegistryProtocolError("a visit is not an object")
        visits.append(Visit(_text(item, "maCSKCB"), _stamp(item, "ngayVao"),
                            _stamp(item, "ngayRa"), _text(item, "lyDoVV")))
    visits.sort(key=lambda v: v.admitted or datetime.min, reverse=True)
    return code, visits[:MAX_VISITS]


def history_json(visits: list[Visit], today: date) -> dict[str, Any]:
    """What the page and the API show: the visits and, when one began today, a warning."""
    today_visit = any(v.admitted is not None and v.admitted.date() == today for v in visits)
    return {"status": "ok", "visits": [v.to_json() for v in visits], "today": today.isoformat(),
            "visited_today": today_visit,
            "messages": [dict(VISIT_TODAY)] if today_visit else []}


def unavailable_json(reason: str) -> dict[str, Any]:
    return {"status": "unavailable", "reason": reason, "visits": [], "visited_today": None,
            "messages": [{"code": "history_unavailable",
                          "vi": "Không lấy được lịch sử khám (cổng BHXH). Vẫn tiếp đón bình "
                                "thường.",
                          "en": "Visit history unavailable (registry). Go on as usual."}]}
