"""The local HTTP API for the page and the HIS (CONTRACT.md "HTTP")."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import MrzError
from terminal.chip import ChipService
from terminal.events import Event, EventBus, StreamsFull
from terminal.flow.results import DESK, Actor, error_json
from terminal.flow.verifier import Verifier
from verify.credentials import ChipKeyInput, chip_keys
from verify.errors import InputFormatError, MissingFieldError
from verify.his import checkin_record, checkin_xml

router = APIRouter()
HEARTBEAT_SECONDS = 15.0
NO_RESULT = {"code": "no_result", "vi": "Chưa có kết quả tra cứu nào (hoặc đã được xóa).",
             "en": "No verification yet (or it was purged)."}


def _services(request: Request) -> Any:
    return request.app.state.services


def _verifier(request: Request) -> Verifier:
    verifier: Verifier = _services(request).verifier
    return verifier


def _bus(request: Request) -> EventBus:
    bus: EventBus = _services(request).bus
    return bus


VerifierDep = Annotated[Verifier, Depends(_verifier)]
BusDep = Annotated[EventBus, Depends(_bus)]


class VerifyRequest(BaseModel):
    """Either ``qr`` (text as a scanner reads it) or typed numbers with name and DOB."""

    model_config = ConfigDict(extra="forbid")
    qr: str | None = Field(default=None, max_length=65536)
    card_code: str | None = Field(default=None, max_length=64)
    id_number: str | None = Field(default=None, max_length=64)
    full_name: str | None = Field(default=None, max_length=200)
    date_of_birth: str | None = Field(default=None, max_length=32)
    reader: Literal["keyboard", "manual", "his"] | None = None


def _actor(request: Request) -> Actor:
    """Who looked: the logged-in staff member, the HIS token, else the desk's officer."""
    user = getattr(request.state, "user", None)
    if user is not None:
        return Actor("staff", user.username, user.name, user.officer_id)
    token = getattr(request.state, "token_name", None)
    if token:
        return Actor("his", token)
    return DESK


def _refused(error: InputFormatError, fp: str | None) -> JSONResponse:
    return JSONResponse({"error": error_json(error, fp)}, status_code=422)


@router.post("/api/v1/verify", tags=["verify"])
async def verify(body: VerifyRequest, verifier: VerifierDep, request: Request) -> JSONResponse:
    """Check one credential; answers an eligibility JSON with the credential under
    ``credential``. Input that cannot be read is refused with 422 and a staff message."""
    fp = None
    try:
        if body.qr is not None:
            if any((body.card_code, body.id_number)):
                raise MissingFieldError("send either qr or typed numbers, not both")
            fp = verifier.fingerprint(body.qr)
            credential = replace(verifier.credential_from_qr(body.qr), reader=body.reader)
        else:
            credential = verifier.credential_from_manual(
                card_code=body.card_code, id_number=body.id_number,
                full_name=body.full_name, date_of_birth=body.date_of_birth)
            credential = replace(credential, reader=body.reader)
            fp = credential.raw_fingerprint
        result = await verifier.verify(credential, _actor(request))
    except InputFormatError as e:
        return _refused(e, fp)
    headers = {}
    if result.registry_ms is not None:
        # Lets the HIS and bench/verify.py tell the terminal's own time from the registry's.
        headers["Server-Timing"] = f"registry;dur={result.registry_ms:.2f}"
    return JSONResponse(result.to_json(), headers=headers)


@router.get("/api/v1/last", tags=["verify"])
async def last(verifier: VerifierDep) -> JSONResponse:
    """The latest verification; 404 when there is none or the privacy window purged it."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    return JSONResponse(result.to_json())


STREAMS_FULL = {"code": "too_many_streams", "vi": "Quá nhiều kết nối theo dõi. Đóng bớt tab.",
                "en": "Too many open event streams. Close some tabs."}


def event_stream(bus: EventBus, request: Request,
                 encode: Callable[[Event], bytes | None]) -> Response:
    """Server-sent events from the bus, ``encode`` deciding what each event becomes (None:
    not sent); a comment every HEARTBEAT_SECONDS keeps proxies from closing the stream. A
    client past its share of streams is told so (429), the streams already open go on."""
    try:
        sub = bus.open(request.client.host if request.client else "?")
    except StreamsFull:
        return JSONResponse({"error": STREAMS_FULL}, status_code=429,
                            headers={"Retry-After": "5"})

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event is None:
                    return
                data = encode(event)
                if data is not None:
                    yield data
        finally:
            sub.release()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/api/v1/events", tags=["verify"], response_model=None)
async def events(bus: BusDep, request: Request) -> Response:
    """Server-sent events: ``credential``, ``eligibility``, ``photo``, ``device``, ``error``."""
    return event_stream(bus, request, lambda event: event.encode())


@router.get("/api/v1/health", tags=["operations"])
async def health(request: Request) -> dict[str, Any]:
    """Each component ``ok`` / ``degraded`` / ``down`` with a reason."""
    services = _services(request)
    components: dict[str, dict[str, Any]] = {}
    registry = services.registry
    if registry is None:
        components["registry"] = {"status": "down", "reason": "offline mode: no registry"}
    else:
        h = registry.health
        status = {"unknown": "degraded"}.get(h.status, h.status)
        components["registry"] = {
            "status": status,
            "reason": h.reason or ("not checked yet" if h.status == "unknown" else ""),
            "last_ok": h.last_ok.isoformat() if h.last_ok else None,
            "last_error": h.last_error.isoformat() if h.last_error else None,
            "last_latency_ms": round(h.last_latency_ms, 1) if h.last_latency_ms else None,
        }
    offline = services.offline
    components["cache"] = (offline.health() if offline is not None else
                           {"status": "down", "reason": "offline store disabled"})
    if registry is not None:
        components["registry"]["breaker"] = registry.breaker.state
    chip = services.chip
    if chip is not None:
        components["chip_reader"] = await chip.health()
    devices = services.devices
    if devices is not None:
        for name, state in devices.states.items():
            components[name] = dict(state)
    if services.hn212 is not None:
        components["his_feed"] = services.hn212.health()
    if services.webhook is not None:
        components["his_webhook"] = await asyncio.to_thread(services.webhook.health)
    components.update(services.extra_health)
    overall = "ok" if components["registry"]["status"] == "ok" else "degraded"
    return {"status": overall, "components": components}


@router.get("/api/v1/rechecks", tags=["verify"])
async def rechecks(verifier: VerifierDep) -> list[dict[str, Any]]:
    """Answers given offline whose outcome changed when the registry was asked again."""
    return verifier.flagged()


@router.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
async def metrics(verifier: VerifierDep) -> PlainTextResponse:
    return PlainTextResponse(verifier.metrics.render(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


# -- chip ------------------------------------------------------------------------------------
class ChipReadRequest(BaseModel):
    """The access key: a CCCD QR (ID, DOB, issue date), the CAN, typed MRZ data, or MRZ
    line 2."""

    model_config = ConfigDict(extra="forbid")
    qr: str | None = Field(default=None, max_length=4096)
    can: str | None = Field(default=None, max_length=6)
    document_number: str | None = Field(default=None, max_length=12)
    date_of_birth: str | None = Field(default=None, max_length=6)
    date_of_expiry: str | None = Field(default=None, max_length=6)
    mrz_line2: str | None = Field(default=None, max_length=40)


def _chip(request: Request) -> ChipService:
    chip: ChipService | None = _services(request).chip
    if chip is None:
        raise HTTPException(404, "no chip reader configured")
    return chip


ChipDep = Annotated[ChipService, Depends(_chip)]


def access_keys(body: ChipReadRequest) -> list[AccessKey | CanKey]:
    """Raises InputFormatError / MrzError with a staff sentence when the key cannot be built."""
    return chip_keys(ChipKeyInput(**body.model_dump()))


async def _read(chip: ChipService, keys: list[AccessKey | CanKey],
                actor: Actor = DESK) -> JSONResponse:
    outcome = await chip.read(keys, actor=actor)
    if outcome.read is None:
        err = outcome.error or {"code": "chip_error"}
        return JSONResponse({"error": err}, status_code=422)
    return JSONResponse(chip.result_json(outcome))


@router.post("/api/v1/chip/read", tags=["chip"])
async def chip_read(body: ChipReadRequest, chip: ChipDep, verifier: VerifierDep,
                    request: Request) -> JSONResponse:
    """Read the chip CCCD on the reader with the given access key; the identity, eligibility
    and photo also arrive on ``/api/v1/events`` as they are read."""
    try:
        keys = access_keys(body)
    except (InputFormatError, MrzError) as e:
        verifier.report(e, None)
        return JSONResponse({"error": error_json(e)}, status_code=422)
    return await _read(chip, keys, _actor(request))


@router.post("/api/v1/chip/demo", tags=["chip"])
async def chip_demo(chip: ChipDep, request: Request) -> JSONResponse:
    """Demo only: present the virtual demo card (keys from its QR, as staff would scan it)."""
    keys = chip.source.demo_keys if chip.source is not None else None
    if keys is None:
        raise HTTPException(404, "not a demo terminal")
    return await _read(chip, keys, _actor(request))


@router.post("/api/v1/camera/demo", tags=["camera"])
async def camera_demo(request: Request) -> dict[str, str]:
    """Demo only: play the demo camera clip (a CCCD QR, then a VssID screen) once more."""
    clip = _services(request).demo_clip
    if clip is None:
        raise HTTPException(404, "not a demo terminal")
    os.utime(clip)  # the camera reader plays a file again when it changes
    return {"status": "playing"}


@router.get("/api/v1/photo", tags=["chip"])
async def photo(chip: ChipDep) -> Response:
    """The latest chip photo, until the privacy window purges it (404 then)."""
    got = chip.photo()
    if got is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    fmt, image = got
    return Response(image, media_type="image/jpeg" if fmt == "jpeg" else "image/jp2",
                    headers={"Cache-Control": "no-store"})


# -- staff page extras, HIS check-in, kiosk ------------------------------------------------------
@router.get("/api/v1/recent", tags=["verify"])
async def recent(verifier: VerifierDep) -> list[dict[str, Any]]:
    """The shift's recent patients, newest first (purged after ``privacy.recent_hours``)."""
    return verifier.shift.recent()


@router.get("/api/v1/stats", tags=["operations"])
async def stats(verifier: VerifierDep) -> dict[str, Any]:
    """Counts for the shift dashboard: patients per hour, sources, result codes. No names."""
    return verifier.shift.stats()


@router.get("/api/v1/last/history", tags=["verify"])
async def last_history(verifier: VerifierDep) -> JSONResponse:
    """The latest patient's visit history (dates, facilities, visit types; no diagnoses):
    ``status`` ok | pending | unavailable | off, ``visits``, ``visited_today``, ``messages``."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    return JSONResponse(verifier.history.get(result.credential.raw_fingerprint))


@router.get("/api/v1/last/checkin.xml", tags=["verify"])
async def last_checkin_xml(verifier: VerifierDep) -> Response:
    """The latest patient as QĐ 4750/QĐ-BYT XML 0 (CHI_TIEU_TRANG_THAI_KCB), UTF-8, with the
    fields the terminal knows. ``X-Tiepdon-Status`` carries the decision: an HIS must not
    take a ``needs_review`` answer as verified."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    body = checkin_xml(result.credential, result.eligibility, verifier.facility_code)
    return Response(body, media_type="application/xml; charset=utf-8",
                    headers={"X-Tiepdon-Status": result.eligibility.status.value})


@router.get("/api/v1/last/checkin", tags=["verify"])
async def last_checkin(verifier: VerifierDep) -> JSONResponse:
    """The latest patient as QĐ 130/QĐ-BYT check-in fields, for the HIS reception form."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    return JSONResponse(checkin_record(result.credential, result.eligibility))


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
    if status not in KIOSK_TEXT or event.get("recheck"):
        return None
    person = event.get("person") or {}
    vi, en = KIOSK_TEXT[status]
    return {"status": status, "name": mask_name(person.get("full_name")), "vi": vi, "en": en,
            "offline": event.get("source") == "cache"}


@router.get("/api/v1/kiosk/events", tags=["kiosk"], response_model=None)
async def kiosk_events(bus: BusDep, request: Request) -> Response:
    """The kiosk's own stream: status, a masked name and a sentence. It never carries ID
    numbers, card codes, full names or photos, so the patient-facing browser never has them."""

    def encode(event: Event) -> bytes | None:
        if event.name == "credential":
            return b"event: reading\ndata: {}\n\n"
        view = kiosk_view(event.data) if event.name == "eligibility" else None
        if view is None:
            return None
        return f"event: result\ndata: {json.dumps(view, ensure_ascii=False)}\n\n".encode()

    return event_stream(bus, request, encode)
