"""Routes only the demo has: present the virtual demo card, replay the demo camera clip.
Mounted by ``create_app`` only when the services carry a demo part (``Services.is_demo``); on
any other terminal these paths do not exist (404)."""

from __future__ import annotations

import os

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from terminal.routes.chip import read_chip
from terminal.routes.deps import ActorDep, ChipDep, ServicesDep

router = APIRouter()


@router.post("/api/v1/chip/demo", tags=["chip"])
async def chip_demo(chip: ChipDep, actor: ActorDep) -> JSONResponse:
    """Demo only: present the virtual demo card (keys from its QR, as staff would scan it)."""
    keys = chip.source.demo_keys if chip.source is not None else None
    if keys is None:
        raise HTTPException(404, "not a demo terminal")
    return await read_chip(chip, keys, actor)


@router.post("/api/v1/camera/demo", tags=["camera"])
async def camera_demo(services: ServicesDep) -> dict[str, str]:
    """Demo only: play the demo camera clip (a CCCD QR, then a VssID screen) once more."""
    clip = services.demo_clip
    if clip is None:
        raise HTTPException(404, "not a demo terminal")
    os.utime(clip)  # the camera reader plays a file again when it changes
    return {"status": "playing"}
