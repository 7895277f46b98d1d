"""HTTP security for the daemon: headers on every answer, and — when bound to a LAN address —
staff login, sessions, CSRF and bearer tokens (terminal/auth.py), in one middleware."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from terminal.auth import (
    COOKIE,
    PUBLIC_PATHS,
    User,
    check_bearer,
    check_password,
    csrf_token,
    make_session,
    read_session,
)
from terminal.resources import static_dir

log = logging.getLogger(__name__)
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
MAX_FAILURES = 5          # wrong passwords from one address …
LOCKOUT_SECONDS = 300.0   # … within this window lock that address out until it passes
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY",
           "Permissions-Policy": "camera=(), microphone=(), geolocation=()"}
UNAUTHORIZED = {"code": "unauthorized", "vi": "Cần đăng nhập.", "en": "Sign in first."}
_STATIC = static_dir()


def install(app: FastAPI, *, users: dict[str, User] | None, tokens: list[str], key: bytes,
            session_hours: float) -> None:
    """Security headers always; authentication only when ``users`` is given (LAN-bound)."""

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if users is None:  # loopback desk: no login; a presented HIS token still names itself
            auth = request.headers.get("authorization", "")
            request.state.token_name = (check_bearer(tokens, auth[7:].strip())
                                        if auth.lower().startswith("bearer ") else None)
        response = await _authenticate(request, call_next) if users is not None else (
            await call_next(request))
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _authenticate(request: Request,
                            call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        request.state.user = None
        if path.startswith(PUBLIC_PATHS):
            return await call_next(request)
        request.state.token_name = None
        auth = request.headers.get("authorization", "")
        token_name = (check_bearer(tokens, auth[7:].strip())
                      if auth.lower().startswith("bearer ") else None)
        if token_name is not None:
            request.state.token_name = token_name  # the audit records which HIS looked
            return await call_next(request)  # the HIS: no cookie, so no CSRF to fear
        session = request.cookies.get(COOKIE, "")
        username = read_session(key, session) if session else None
        user = users.get(username) if users is not None and username else None
        if user is None:
            if path.startswith("/api/") or path in ("/metrics", "/openapi.json", "/docs"):
                return JSONResponse({"error": UNAUTHORIZED}, status_code=401)
            return RedirectResponse("/login", status_code=303)
        if request.method in STATE_CHANGING and not hmac.compare_digest(
                request.headers.get("x-csrf-token", ""), csrf_token(key, session)):
            return JSONResponse({"error": {"code": "csrf", "vi": "Phiên làm việc không hợp lệ. "
                                           "Tải lại trang.", "en": "Invalid session. Reload "
                                           "the page."}}, status_code=403)
        request.state.user = user
        request.state.csrf = csrf_token(key, session)
        return await call_next(request)

    if users is None:
        return

    @app.get("/login", include_in_schema=False)
    async def login_page(e: int = 0) -> HTMLResponse:
        html = (_STATIC / "login.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("__ERROR_HIDDEN__", "" if e else "hidden"))

    failures: dict[str, list[float]] = {}

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        recent = [t for t in failures.get(client, []) if now - t < LOCKOUT_SECONDS]
        if len(recent) >= MAX_FAILURES:
            log.warning("login locked out for a while after repeated failures")
            return JSONResponse({"error": {"code": "login_locked", "vi": "Sai mật khẩu nhiều "
                                           "lần. Thử lại sau 5 phút.", "en": "Too many wrong "
                                           "passwords. Try again in 5 minutes."}},
                                status_code=429)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        user = users.get(form.get("username", ""))
        if user is None or not check_password(form.get("password", ""), user.password):
            failures[client] = [*recent, now]
            log.warning("login refused")
            return RedirectResponse("/login?e=1", status_code=303)
        failures.pop(client, None)
        log.info("login ok")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, make_session(key, user.username, session_hours),
                            max_age=int(session_hours * 3600), httponly=True, samesite="strict",
                            path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response
