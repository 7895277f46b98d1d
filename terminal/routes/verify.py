"""Checking a credential and reading the results: ``POST /api/v1/verify``, the latest answer
(also as the HIS check-in record and visit history), the shift's recent patients, the
re-checks, and the event stream the staff page and the HIS follow."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from terminal.flow.results import error_json
from terminal.routes.deps import NO_RESULT, ActorDep, BusDep, SignedInDep, VerifierDep
from terminal.routes.sse import event_stream
from verify.credentials import MAX_CODE_CHARS, MAX_DATE_CHARS, MAX_NAME_CHARS
from verify.errors import InputFormatError
from verify.his import checkin_record, checkin_xml

router = APIRouter(tags=["verify"])


class VerifyRequest(BaseModel):
    """Either ``qr`` (text as a scanner reads it) or typed numbers with name and DOB."""

    model_config = ConfigDict(extra="forbid")
    qr: str | None = Field(default=None, max_length=65536)
    card_code: str | None = Field(default=None, max_length=MAX_CODE_CHARS)
    id_number: str | None = Field(default=None, max_length=MAX_CODE_CHARS)
    full_name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    date_of_birth: str | None = Field(default=None, max_length=MAX_DATE_CHARS)
    # Who typed it: the scan field, the manual form, the HIS, or staff confirming the form a
    # card image filled (the page sends "card_image" while any field is still as read).
    reader: Literal["keyboard", "manual", "his", "card_image"] | None = None


def _refused(error: InputFormatError, fp: str | None) -> JSONResponse:
    return JSONResponse({"error": error_json(error, fp)}, status_code=422)


@router.post("/api/v1/verify")
async def verify(body: VerifyRequest, verifier: VerifierDep, actor: ActorDep,
                 request: Request) -> JSONResponse:
    """Check one credential; answers an eligibility JSON with the credential under
    ``credential``. Input that cannot be read is refused with 422 and a staff message."""
    fp = None
    try:
        if body.qr is not None:
            fp = verifier.fingerprint(body.qr)
        credential = replace(verifier.credential_from_input(
            qr=body.qr, card_code=body.card_code, id_number=body.id_number,
            full_name=body.full_name, date_of_birth=body.date_of_birth), reader=body.reader)
        fp = credential.raw_fingerprint or fp
        result = await verifier.verify(credential, actor)
    except InputFormatError as e:
        return _refused(e, fp)
    headers = {}
    if result.registry_ms is not None:
        # Lets the HIS and bench/verify.py tell the terminal's own time from the registry's.
        headers["Server-Timing"] = f"registry;dur={result.registry_ms:.2f}"
    return JSONResponse(result.to_json(), headers=headers)


@router.get("/api/v1/last")
async def last(verifier: VerifierDep) -> JSONResponse:
    """The latest verification; 404 when there is none or the privacy window purged it."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    return JSONResponse(result.to_json())


@router.get("/api/v1/events", response_model=None)
async def events(bus: BusDep, request: Request, signed_in: SignedInDep) -> Response:
    """Server-sent events: ``credential``, ``eligibility``, ``photo``, ``device``, ``error``,
    ``chip``, ``history``, ``card_text`` (a card image's draft for staff to confirm). A staff
    member's stream ends with their session (logout, disable, password, expiry)."""
    return event_stream(bus, request, lambda event: event.encode(), live=signed_in)


@router.get("/api/v1/rechecks")
async def rechecks(verifier: VerifierDep) -> list[dict[str, Any]]:
    """Answers given offline whose outcome changed when the registry was asked again."""
    return verifier.flagged()


@router.get("/api/v1/recent")
async def recent(verifier: VerifierDep) -> list[dict[str, Any]]:
    """The shift's recent patients, newest first (purged after ``privacy.recent_hours``)."""
    return verifier.shift.recent()


@router.get("/api/v1/last/history")
async def last_history(verifier: VerifierDep) -> JSONResponse:
    """The latest patient's visit history (dates, facilities, visit types; no diagnoses):
    ``status`` ok | pending | unavailable | off, ``visits``, ``visited_today``, ``messages``."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    return JSONResponse(verifier.history.get(result.credential.raw_fingerprint))


@router.get("/api/v1/last/checkin.xml")
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


@router.get("/api/v1/last/checkin")
async def last_checkin(verifier: VerifierDep) -> JSONResponse:
    """The latest patient as QĐ 130/QĐ-BYT check-in fields, for the HIS reception form."""
    result = verifier.last()
    if result is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    return JSONResponse(checkin_record(result.credential, result.eligibility))
