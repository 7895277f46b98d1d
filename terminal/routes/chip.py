"""The chip CCCD on the reader: ``POST /api/v1/chip/read`` with an access key, and the latest
chip photo for the patient it was read from. Both answer 404 when the terminal has no chip
reader."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from readers.emrtd.mrz import AccessKey, CanKey
from readers.errors import MrzError
from terminal.chip import ChipService
from terminal.flow.results import DESK, Actor, error_json
from terminal.routes.deps import NO_RESULT, ActorDep, ChipDep, VerifierDep
from verify.credentials import ChipKeyInput, chip_keys
from verify.errors import InputFormatError

router = APIRouter(tags=["chip"])


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


def access_keys(body: ChipReadRequest) -> list[AccessKey | CanKey]:
    """Raises InputFormatError / MrzError with a staff sentence when the key cannot be built."""
    return chip_keys(ChipKeyInput(**body.model_dump()))


async def read_chip(chip: ChipService, keys: list[AccessKey | CanKey],
                    actor: Actor = DESK) -> JSONResponse:
    """One read with ``keys``: the chip JSON, or 422 with the read's staff message."""
    outcome = await chip.read(keys, actor=actor)
    if outcome.read is None:
        err = outcome.error or {"code": "chip_error"}
        return JSONResponse({"error": err}, status_code=422)
    return JSONResponse(chip.result_json(outcome))


@router.post("/api/v1/chip/read")
async def chip_read(body: ChipReadRequest, chip: ChipDep, verifier: VerifierDep,
                    actor: ActorDep) -> JSONResponse:
    """Read the chip CCCD on the reader with the given access key; the identity, eligibility
    and photo also arrive on ``/api/v1/events`` as they are read."""
    try:
        keys = access_keys(body)
    except (InputFormatError, MrzError) as e:
        verifier.report(e, None)
        return JSONResponse({"error": error_json(e)}, status_code=422)
    return await read_chip(chip, keys, actor)


@router.get("/api/v1/photo")
async def photo(chip: ChipDep,
                fp: Annotated[str, Query(max_length=64)] = "") -> Response:
    """The latest chip photo, for the fingerprint it was read with (the ``photo`` event's
    URL carries it), until the privacy window purges it. 404 for another fingerprint or none:
    a photo is never handed out without naming whose it is (issue 23)."""
    got = chip.photo(fp)
    if got is None:
        return JSONResponse({"error": NO_RESULT}, status_code=404)
    fmt, image = got
    return Response(image, media_type="image/jpeg" if fmt == "jpeg" else "image/jp2",
                    headers={"Cache-Control": "no-store"})
