"""The patient-facing display's own event stream (``/api/v1/kiosk/events``): a status, a
masked name and a sentence — never ID numbers, card codes, full names or photos. The kiosk
page itself is in ``pages.py``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from terminal.events import Event
from terminal.routes.deps import BusDep, SettingsDep
from terminal.routes.sse import event_stream

NOT_A_KIOSK = {"code": "kiosk_not_here",
               "vi": "Màn hình này không có trong danh sách màn hình kiosk (http.kiosk_clients).",
               "en": "This screen is not one of the kiosk screens (http.kiosk_clients)."}

router = APIRouter(tags=["kiosk"])

KIOSK_TEXT = {
    "eligible": ("Thẻ BHYT hợp lệ. Mời ông/bà ngồi chờ gọi tên.",
                 "Your health insurance card is valid. Please take a seat."),
    "not_eligible": ("Thẻ BHYT chưa dùng được. Mời ông/bà gặp nhân viên tiếp đón.",
                     "Your card cannot be used. Please see the reception staff."),
    "needs_review": ("Nhân viên đang kiểm tra thông tin. Xin vui lòng chờ.",
                     "Staff are checking your details. Please wait."),
}


def mask_name(name: str | None) -> str | None:
    """``Nguyễn Văn An`` → ``NGUYỄN V. A.``: family name and initials only (kiosk)."""
    if not name:
        return None
    parts = name.upper().split()
    return " ".join([parts[0], *(p[0] + "." for p in parts[1:])])


def kiosk_view(event: dict[str, Any]) -> dict[str, Any] | None:
    """What the patient may see of an eligibility event; None for other events."""
    status = event.get("status")
    if status not in KIOSK_TEXT or event.get("recheck") or event.get("provisional"):
        return None  # a chip still being read: the kiosk keeps showing "reading"
    person = event.get("person") or {}
    vi, en = KIOSK_TEXT[status]
    return {"status": status, "name": mask_name(person.get("full_name")), "vi": vi, "en": en,
            "offline": event.get("source") == "cache"}


def _encode(event: Event) -> bytes | None:
    if event.name == "credential":
        return b"event: reading\ndata: {}\n\n"
    view = kiosk_view(event.data) if event.name == "eligibility" else None
    if view is None:
        return None
    return f"event: result\ndata: {json.dumps(view, ensure_ascii=False)}\n\n".encode()


@router.get("/api/v1/kiosk/events", response_model=None)
async def kiosk_events(bus: BusDep, settings: SettingsDep, request: Request) -> Response:
    """The kiosk's own stream: status, a masked name and a sentence. It never carries ID
    numbers, card codes, full names or photos, so the patient-facing browser never has them.
    Public, so its streams come from the kiosk's own small pool, never the HIS's or staff's."""
    if not settings.http.kiosk_allowed(request.client.host if request.client else "?"):
        return JSONResponse({"error": NOT_A_KIOSK}, status_code=403)
    return event_stream(bus, request, _encode, kiosk=True)
