"""For the hospital's IT staff and monitoring: health of each part, Prometheus metrics, and
the shift's counts (no names)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from terminal import status
from terminal.routes.deps import ServicesDep, VerifierDep

router = APIRouter(tags=["operations"])


@router.get("/api/v1/health")
async def health(services: ServicesDep) -> dict[str, Any]:
    """Each component ``ok`` / ``degraded`` / ``down`` with a reason."""
    return await status.health(services)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(verifier: VerifierDep) -> PlainTextResponse:
    return PlainTextResponse(verifier.metrics.render(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/v1/stats")
async def stats(verifier: VerifierDep) -> dict[str, Any]:
    """Counts for the shift dashboard: patients per hour, sources, result codes. No names."""
    return verifier.shift.stats()
