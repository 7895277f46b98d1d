"""The metrics listener (``[metrics] listen``): a second port for the facility's Prometheus,
serving only ``GET /metrics`` and ``GET /api/v1/health``, each only with the bearer token
(``[metrics] token_file`` or the systemd credential ``metrics.token``) — 401 without it.

No pages, no patient data, no staff login, no Host check (a browser never sends the token by
itself). ``terminal.server.PortRouter`` sends the port's requests here; the lifespan stays the
main app's.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse

from terminal import status
from terminal.services import Services

METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def bearer_check(token: bytes) -> Any:
    """A dependency refusing any request without ``Authorization: Bearer <token>``; the
    token is compared as a SHA-256 digest in constant time."""
    expected = hashlib.sha256(token).digest()

    def check(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        digest = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(digest, expected):
            raise HTTPException(401, "bearer token required",
                                headers={"WWW-Authenticate": 'Bearer realm="tiepdon-metrics"'})

    return check


def create_scrape_app(services: Services, token: bytes) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    router = APIRouter(dependencies=[Depends(bearer_check(token))])

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(services.verifier.metrics.render(),
                                 media_type=METRICS_MEDIA_TYPE,
                                 headers={"Cache-Control": "no-store"})

    @router.get("/api/v1/health")
    async def health() -> dict[str, Any]:
        return await status.health(services)

    app.include_router(router)
    return app
