"""The staff page (``/``). Assets are local files under ``static/``: no CDN, the desk may be
offline. Card text is put on the page with ``textContent`` only, never as HTML."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
_STATIC = Path(__file__).resolve().parent / "static"


@router.get("/", response_class=HTMLResponse)
async def staff_page(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    chip = request.app.state.services.chip
    page_config = {
        "facility_code": settings.facility.code,
        "facility_name": settings.facility.name,
        "language": settings.ui.language,
        "keep_last_seconds": settings.privacy.last_result_minutes * 60,
        "chip": chip is not None,
        "chip_demo": chip is not None and chip.is_demo,
        "camera_demo": request.app.state.services.demo_clip is not None,
    }
    html = (_STATIC / "index.html").read_text(encoding="utf-8")
    # JSON inside a <script type="application/json">: escape "<" so no value can close it.
    blob = json.dumps(page_config, ensure_ascii=False).replace("<", "\\u003c")
    html = html.replace("__PAGE_CONFIG__", blob)
    return HTMLResponse(html, headers={
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
