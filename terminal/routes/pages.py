"""The HTML pages: the staff page (``/``), the kiosk (``/kiosk``) and the shift dashboard
(``/dashboard``). Assets are local files under ``static/``: no CDN, the desk may be
offline. Card text is put on the page with ``textContent`` only, never as HTML."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from terminal.dashboard import render
from terminal.resources import static_dir
from terminal.routes.deps import ServicesDep, SettingsDep, VerifierDep

router = APIRouter(include_in_schema=False)
_STATIC = static_dir()


_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(name: str, config: dict[str, object]) -> HTMLResponse:
    html = (_STATIC / name).read_text(encoding="utf-8")
    # JSON inside a <script type="application/json">: escape "<" so no value can close it.
    blob = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    return HTMLResponse(html.replace("__PAGE_CONFIG__", blob), headers=_HEADERS)


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk_page(settings: SettingsDep) -> HTMLResponse:
    return _page("kiosk.html", {"facility_name": settings.facility.name,
                                "clear_seconds": settings.kiosk.clear_seconds})


@router.get("/", response_class=HTMLResponse)
async def staff_page(settings: SettingsDep, services: ServicesDep,
                     request: Request) -> HTMLResponse:
    chip = services.chip
    page_config = {
        "facility_code": settings.facility.code,
        "facility_name": settings.facility.name,
        "language": settings.ui.language,
        "keep_last_seconds": settings.privacy.last_result_minutes * 60,
        "chip": chip is not None,
        "chip_demo": chip is not None and chip.is_demo,
        "camera_demo": services.demo_clip is not None,
        "csrf": getattr(request.state, "csrf", None),
        "user": getattr(getattr(request.state, "user", None), "name", None),
    }
    return _page("index.html", page_config)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(settings: SettingsDep, verifier: VerifierDep) -> HTMLResponse:
    """The shift's counts as server-side SVG (no script)."""
    stats = verifier.shift.stats()
    name = settings.facility.name or settings.facility.code
    return HTMLResponse(render(stats, name), headers=_HEADERS)
