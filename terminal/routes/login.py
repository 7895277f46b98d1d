"""Staff sign-in and sign-out (``/login``, ``/logout``), mounted only when login is required
(``security.auth_required``). Failures are counted per account and per address; the password
check runs in ``Login.check``, off the event loop."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from terminal.resources import static_dir
from terminal.routes.deps import BusDep
from terminal.security import Login, error_answer

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
_STATIC = static_dir()


def _login(request: Request) -> Login:
    login: Login = request.app.state.login
    return login


LoginDep = Annotated[Login, Depends(_login)]


@router.get("/login")
async def login_page(e: int = 0) -> HTMLResponse:
    html = (_STATIC / "login.html").read_text(encoding="utf-8")
    return HTMLResponse(html.replace("__ERROR_HIDDEN__", "" if e else "hidden"))


@router.post("/login")
async def do_login(request: Request, login: LoginDep) -> Response:
    client = request.client.host if request.client else "?"
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    username = form.get("username", "")[:64]
    # Five failures lock an address (any account) and an account at that address; the
    # account everywhere only after ACCOUNT_FAILURES from several addresses — one host's
    # wrong guesses must not lock a staff member out at their own desk.
    keys = (f"addr:{client}", f"pair:{username}|{client}", f"user:{username}")
    stamp = login.limiter.begin(*keys)
    if stamp is None:
        log.warning("login locked out for a while after repeated failures")
        return error_answer(429, "login_locked", "Sai mật khẩu nhiều lần. Thử lại sau 5 phút.",
                            "Too many wrong passwords. Try again in 5 minutes.")
    if login.waiting.locked():
        # others' slow password checks fill the queue: this try was never judged, so it
        # must not count toward the staff member's own lockout
        login.limiter.forgive(stamp, *keys)
        return error_answer(503, "login_busy", "Hệ thống đang bận. Thử lại sau ít giây.",
                            "Busy. Try again in a few seconds.")
    user = await login.check(username, form.get("password", "")[:256])
    if user is None:
        log.warning("login refused")
        return RedirectResponse("/login?e=1", status_code=303)
    login.limiter.succeeded(stamp, *keys)
    log.info("login ok")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(login.cookie, login.sessions.open(user),
                        max_age=int(login.session_hours * 3600), httponly=True,
                        samesite="strict", secure=login.secure, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, login: LoginDep, bus: BusDep) -> Response:
    login.sessions.close(getattr(request.state, "session", ""))
    bus.recheck()  # the session's open event streams end now, not at their next event
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(login.cookie, path="/", secure=login.secure, httponly=True,
                           samesite="strict")
    return response
